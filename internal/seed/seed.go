// Package seed holds the two example queries of GitLab's product analytics
// API documentation, which every client of the API must be able to send:
// the tests, the local stack's greeting and events/ use these.
package seed

// TrackedEvents is the documentation's tracked events example: this week's
// events by page, through the older docPath and utcTime member names.
const TrackedEvents = `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","dateRange":"This week"}],"order":[["TrackedEvents.count","desc"],["TrackedEvents.docPath","desc"],["TrackedEvents.utcTime","asc"]],"dimensions":["TrackedEvents.docPath"],"limit":23}`

// Sessions is the documentation's sessions example: sessions by day.
const Sessions = `{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"Sessions.startAt","granularity":"day"}],"order":{"Sessions.startAt":"asc"},"limit":100}`

// Body is a load or dry-run body for query, as the documentation sends it.
func Body(query string) string {
	return `{"query":` + query + `,"queryType":"multi"}`
}

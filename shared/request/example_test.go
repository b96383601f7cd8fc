package request_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"

	"productanalytics/shared/request"
)

// A load as GitLab's dashboards send it: a POST with a JSON body. What goes
// on to Cube is the API's own encoding of the checked query.
func ExampleRead() {
	r := httptest.NewRequest("POST", "/api/v4/projects/42/product_analytics/request/load",
		strings.NewReader(`{"query": {"measures": ["TrackedEvents.count"], "timezone": "Europe/Berlin"}, "queryType": "multi"}`))
	call, err := request.Read(httptest.NewRecorder(), r, "42", true)
	if err != nil {
		panic(err)
	}
	fmt.Println(call.ProjectID, string(call.AppendQuery(nil)))
	// Output: 42 {"measures":["TrackedEvents.count"],"timezone":"Europe/Berlin"}
}

// Cube's own client sends a GET with the query in the query string.
func ExampleRead_get() {
	q := url.Values{"query": {`{"measures":["Sessions.count"],"order":{"Sessions.count":"desc"}}`}, "queryType": {"multi"}}
	r := httptest.NewRequest("GET", "/projects/7/product_analytics/request/load?"+q.Encode(), nil)
	call, err := request.Read(httptest.NewRecorder(), r, "7", true)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(call.AppendQuery(nil)))
	// Output: {"measures":["Sessions.count"],"order":[["Sessions.count","desc"]]}
}

// A query that smuggles SQL through its time zone is refused, naming the
// field.
func ExampleParseQuery() {
	_, err := request.ParseQuery([]byte(`{"measures":["TrackedEvents.count"],"timezone":"UTC'); DROP TABLE x; --"}`))
	fmt.Println(err)
	// Output: query.timezone is not a time zone name such as UTC or America/Los_Angeles: "UTC'); DROP TABLE x; --"
}

// A project's funnels are cubes of its own: a query of another project's
// funnel is refused as Cube refuses any cube it does not know.
func ExampleCall_CheckFunnelMembers() {
	q, _ := request.ParseQuery([]byte(`{"measures":["install.count"],"dimensions":["install.step"]}`))
	call := request.Call{ProjectID: 2, Queries: []*request.Query{q}}
	projectFunnels := map[string]bool{"sign_up": true}
	fmt.Println(call.CheckFunnelMembers(func(name string) bool { return projectFunnels[name] }))
	// Output: Cube 'install' not found for path 'install.count'
}

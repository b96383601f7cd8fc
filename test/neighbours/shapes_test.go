package neighbours

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The query shapes that took Cube down or stalled it for every project
// (issue: "one tenant cannot take Cube down"), each made of fields the API
// allows one by one.

// stringDimensions are 25 of TrackedEvents' string dimensions: every
// column of an event a caller may ask for, one per answer column.
var stringDimensions = []string{
	"eventId", "event", "eventName", "pageUrl", "baseUrl", "pageUrlhosts", "pageUrlpath", "docPath",
	"pageTitle", "pageReferrer", "useragent", "targetUrl", "elementId", "customEventName",
	"customEventProps", "customUserProps", "userId", "agentName", "agentVersion", "osFamily",
	"osName", "osVersion", "osVersionMajor", "browserLanguage", "documentLanguage",
}

// members names the first n string dimensions as TrackedEvents members.
func members(n int) []string {
	out := make([]string, n)
	for i, d := range stringDimensions[:n] {
		out[i] = "TrackedEvents." + d
	}
	return out
}

// mustJSON encodes v, which is always made of maps, slices, strings and
// numbers.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ungroupedQuery is every event of the project with 25 string columns, at
// the largest limit the API takes: 1.25 million cells in one answer.
func ungroupedQuery() string {
	return mustJSON(map[string]any{"dimensions": members(25), "ungrouped": true, "limit": 50000})
}

// comparedQuery counts events by the second over twelve compared ranges of
// a thousand years each, at the largest limit: twelve 50,000-row results
// in one answer.
func comparedQuery() string {
	ranges := make([]string, 12)
	for i := range ranges {
		ranges[i] = "from 1000 years ago to now"
	}
	return mustJSON(map[string]any{
		"measures": []string{"TrackedEvents.count"},
		"timeDimensions": []map[string]any{{
			"dimension": "TrackedEvents.derivedTstamp", "granularity": "second", "compareDateRange": ranges,
		}},
		"limit": 50000,
	})
}

// exportColumns are the columns of exportQuery: a 50,000-row answer of
// them is about 6.4 MB of JSON.
var exportColumns = []string{"TrackedEvents.eventId", "TrackedEvents.pageUrlpath", "TrackedEvents.event"}

// exportQuery is an export of rows events from offset on, ordered so that
// each offset is another answer for Cube's result cache.
func exportQuery(columns []string, rows, offset int) string {
	return mustJSON(map[string]any{
		"dimensions": columns,
		"order":      [][2]string{{"TrackedEvents.eventId", "asc"}},
		"limit":      rows,
		"offset":     offset,
	})
}

// blendQuery is a data-blending query of n small daily series (Cube
// blends only queries with the same granularity), each one distinct (its
// limit), so that Cube plans and runs every one of them.
func blendQuery(n int) string {
	qs := make([]string, n)
	for i := range qs {
		qs[i] = fmt.Sprintf(`{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day","dateRange":"last 30 days"}],"limit":%d}`, i+1)
	}
	return "[" + strings.Join(qs, ",") + "]"
}

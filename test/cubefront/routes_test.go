package cubefront

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The routes Cube 0.33 registers that no client of this deployment needs,
// and spellings of the served ones that are not theirs.
var refusedPaths = []string{
	"/cubejs-api/v1/pre-aggregations/can-use",
	"/cubejs-api/v1/pre-aggregations/jobs",
	"/cubejs-api/v1/run-scheduled-refresh",
	"/cubejs-api/v1/subscribe",
	"/cubejs-api/graphql",
	"/cubejs-api/graphql/x",
	"/cubejs-system/v1/context",
	"/cubejs-system/v1/pre-aggregations",
	"/cubejs-system/v1/pre-aggregations/build",
	"/",
	"/playground",
	"/cubejs-api/v1/load/",
	"/CUBEJS-API/v1/load",
	"//cubejs-api/v1/load",
	"/cubejs-api/v1/%6coad",
	"/cubejs-api/v2/load",
	"/cubejs-api/v1/pre-aggregations%2Fcan-use",
}

// The bodies sent to every refused route.
var oddBodies = []struct {
	name        string
	body        []byte
	contentType string
}{
	{"none", nil, ""},
	{"empty JSON", []byte(`{}`), "application/json"},
	{"null", []byte(`null`), "application/json"},
	{"can-use's fields", []byte(`{"transformedQuery":null,"references":{"x":1}}`), "application/json"},
	{"not JSON", []byte(`{"transformedQuery":`), "application/json"},
	{"text", []byte(`hello`), "text/plain"},
}

// TestRefusedRoutes sends every route Cube has but clients do not need,
// with each method and odd bodies, with a project's token: each is 404
// (405 for a served route's wrong method) before Cube's code runs, and Cube
// stays up. POST can-use without a body ended Cube 0.33.65 before.
func TestRefusedRoutes(t *testing.T) {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions}
	for _, path := range refusedPaths {
		for _, method := range methods {
			for _, b := range oddBodies {
				t.Run(fmt.Sprintf("%s %s %s", method, path, b.name), func(t *testing.T) {
					h := withToken(t, 1)
					if b.contentType == "" {
						delete(h, "Content-Type")
					} else {
						h["Content-Type"] = b.contentType
					}
					a := mustSend(t, method, path, b.body, h)
					if a.status != http.StatusNotFound || string(a.body) != `{"error":"Not Found"}` {
						t.Errorf("answer %d %.300s; want 404 {\"error\":\"Not Found\"}", a.status, a.body)
					}
				})
			}
		}
	}
	cubeUp(t)
}

// TestServedRoutesWrongMethod: a served route with a method it is not
// served with is 405 naming the methods it takes.
func TestServedRoutesWrongMethod(t *testing.T) {
	cases := []struct {
		path, method, allow string
	}{
		{"/cubejs-api/v1/meta", http.MethodPost, "GET"},
		{"/cubejs-api/v1/meta", http.MethodDelete, "GET"},
		{"/cubejs-api/v1/load", http.MethodPut, "GET, POST"},
		{"/cubejs-api/v1/load", http.MethodHead, "GET, POST"},
		{"/cubejs-api/v1/dry-run", http.MethodOptions, "GET, POST"},
		{"/cubejs-api/v1/sql", http.MethodPatch, "GET, POST"},
		{"/readyz", http.MethodPost, "GET, HEAD"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			a := mustSend(t, c.method, c.path, []byte(`{}`), withToken(t, 1))
			if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != c.allow {
				t.Errorf("answer %d Allow %q %.200s; want 405 Allow %q", a.status, a.header.Get("Allow"), a.body, c.allow)
			}
			if c.method != http.MethodHead && string(a.body) != `{"error":"Method Not Allowed"}` {
				t.Errorf("body %.200s; want {\"error\":\"Method Not Allowed\"}", a.body)
			}
		})
	}
	cubeUp(t)
}

// TestServedRoutes: what clients call still works with a token, and the
// probes without one.
func TestServedRoutes(t *testing.T) {
	q := url.QueryEscape(`{"measures":["TrackedEvents.count"]}`)
	cases := []struct {
		name, method, path, body string
		token                    bool
		want                     string
	}{
		{"load GET", http.MethodGet, "/cubejs-api/v1/load?queryType=multi&query=" + q, "", true, `"results"`},
		{"load POST", http.MethodPost, "/cubejs-api/v1/load", `{"query":{"measures":["TrackedEvents.count"]},"queryType":"multi"}`, true, `"results"`},
		{"load POST query as text", http.MethodPost, "/cubejs-api/v1/load", `{"query":"{\"measures\":[\"TrackedEvents.count\"]}"}`, true, `"data"`},
		{"blend of 2", http.MethodPost, "/cubejs-api/v1/load", `{"query":[` +
			`{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day","dateRange":"last 7 days"}]},` +
			`{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"Sessions.startAt","granularity":"day","dateRange":"last 7 days"}]}],"queryType":"multi"}`, true, `"results"`},
		{"dry-run", http.MethodPost, "/cubejs-api/v1/dry-run", `{"query":{"measures":["TrackedEvents.count"]}}`, true, `"normalizedQueries"`},
		{"sql", http.MethodGet, "/cubejs-api/v1/sql?query=" + q, "", true, `"sql"`},
		{"meta", http.MethodGet, "/cubejs-api/v1/meta", "", true, `"cubes"`},
		{"readyz", http.MethodGet, "/readyz", "", false, `"HEALTH"`},
		{"livez", http.MethodGet, "/livez", "", false, `"HEALTH"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": "application/json"}
			if c.token {
				h["Authorization"] = token(t, 1)
			}
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			a := mustSend(t, c.method, c.path, body, h)
			if a.status != http.StatusOK || !strings.Contains(string(a.body), c.want) {
				t.Errorf("answer %d %.300s; want 200 with %s", a.status, a.body, c.want)
			}
		})
	}
}

// TestWrongRequests: each caller's mistake on a served route gets its 4xx
// and {"error": ...} without a stack or a path, and Cube stays up.
func TestWrongRequests(t *testing.T) {
	blend := func(n int) string {
		qs := make([]string, n)
		for i := range qs {
			qs[i] = `{"measures":["TrackedEvents.count"]}`
		}
		return `{"query":[` + strings.Join(qs, ",") + `],"queryType":"multi"}`
	}
	big := `{"query":{"measures":["TrackedEvents.count"]},"pad":"` + strings.Repeat("x", 1100*1024) + `"}`
	deep := `{"query":{"filters":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		error                    string // part of the answer's error
	}{
		{"body not JSON", http.MethodPost, "/cubejs-api/v1/load", `{"query":`, nil, 400, "not valid JSON"},
		{"query text not JSON", http.MethodPost, "/cubejs-api/v1/load", `{"query":"{measures"}`, nil, 400, "query is not valid JSON"},
		{"query string not JSON", http.MethodGet, "/cubejs-api/v1/load?query=%7Bx", "", nil, 400, "query is not valid JSON"},
		{"sql query not JSON", http.MethodGet, "/cubejs-api/v1/sql?query=%5B", "", nil, 400, "query is not valid JSON"},
		{"dry-run query not JSON", http.MethodPost, "/cubejs-api/v1/dry-run", `{"query":"]"}`, nil, 400, "query is not valid JSON"},
		{"blend of 11", http.MethodPost, "/cubejs-api/v1/load", blend(11), nil, 400, "at most 10"},
		{"blend of 1000", http.MethodPost, "/cubejs-api/v1/load", blend(1000), nil, 400, "at most 10"},
		{"blend of 1000 to dry-run", http.MethodPost, "/cubejs-api/v1/dry-run", blend(1000), nil, 400, "at most 10"},
		// Found by TestRouteFuzz: Cube's own check of a blend read the
		// granularity of a query without a time dimension, a TypeError (500).
		{"blend with a query without a time dimension", http.MethodGet, "/cubejs-api/v1/load?queryType=multi&query=" + url.QueryEscape(
			`[{"measures":["TrackedEvents.count"]},{"measures":["TrackedEvents.pageViewsCount"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day","dateRange":"last week"}]}]`),
			"", nil, 400, "query[0].timeDimensions must begin with a time dimension with a granularity"},
		{"body over 1 MB", http.MethodPost, "/cubejs-api/v1/load", big, nil, 413, "larger than 1 MB"},
		{"unknown member", http.MethodPost, "/cubejs-api/v1/load", `{"query":{"measures":["TrackedEvents.nope"]}}`, nil, 400, "nope"},
		{"no query", http.MethodPost, "/cubejs-api/v1/load", `{}`, nil, 400, "query"},
		{"query not an object", http.MethodPost, "/cubejs-api/v1/load", `{"query":42}`, nil, 400, ""},
		{"deep nesting", http.MethodPost, "/cubejs-api/v1/load", deep, nil, 400, ""},
		{"gzip that is not", http.MethodPost, "/cubejs-api/v1/load", `{"query":{}}`, map[string]string{"Content-Encoding": "gzip"}, 400, ""},
		{"unknown encoding", http.MethodPost, "/cubejs-api/v1/load", `{"query":{}}`, map[string]string{"Content-Encoding": "zstd"}, 415, "encoding"},
		{"no token", http.MethodGet, "/cubejs-api/v1/meta", "", map[string]string{"Authorization": ""}, 403, "Authorization"},
		{"invalid token", http.MethodGet, "/cubejs-api/v1/meta", "", map[string]string{"Authorization": "Bearer x.y.z"}, 403, "Invalid token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := withToken(t, 1)
			for k, v := range c.header {
				if v == "" {
					delete(h, k)
				} else {
					h[k] = v
				}
			}
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			a := mustSend(t, c.method, c.path, body, h)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(a.body, &e); err != nil || e.Error == "" {
				t.Fatalf("answer %d %.300s; want {\"error\": ...} (%v)", a.status, a.body, err)
			}
			if a.status != c.status || !strings.Contains(e.Error, c.error) {
				t.Errorf("answer %d %q; want %d with %q", a.status, e.Error, c.status, c.error)
			}
			if what := internals(a.body); what != "" {
				t.Errorf("answer carries %s: %.500s", what, a.body)
			}
		})
	}
	cubeUp(t)
}

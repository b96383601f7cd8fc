package request

import (
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"productanalytics/internal/seed"
)

func TestProjectID(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true},
		{"42", 42, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false}, // one past 63 bits
		{"0", 0, false},
		{"01", 0, false},
		{"1.0", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1e3", 0, false},
		{" 1", 0, false},
		{"", 0, false},
		{"abc", 0, false},
		{"１", 0, false}, // a full-width digit
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ProjectID(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Errorf("got %d, %v; want %d", got, err, tt.want)
				}
				return
			}
			var re *Error
			if !errors.As(err, &re) || re.Field != "id" || !strings.HasPrefix(re.Error(), "id is invalid") {
				t.Errorf("got error %v; want a refusal naming id", err)
			}
		})
	}
}

func TestParseBody(t *testing.T) {
	seedTracked, seedSessions := seed.Body(seed.TrackedEvents), seed.Body(seed.Sessions)
	tests := []struct {
		name    string
		body    string
		status  int    // 0: valid; else 400
		message string // substring of the message
		token   bool
	}{
		{name: "seed tracked events", body: seedTracked},
		{name: "seed sessions", body: seedSessions},
		{name: "queryType absent", body: `{"query":{"measures":["Sessions.count"]}}`},
		{name: "include_token true", body: `{"query":{"measures":["Sessions.count"]},"include_token":true}`, token: true},
		{name: "include_token string", body: `{"query":{"measures":["Sessions.count"]},"include_token":"true"}`, token: true},
		{name: "granularity in dimensions", body: `{"query":{"measures":["Sessions.count"],"dimensions":["Sessions.startAt.day"]}}`},
		{name: "nested filters", body: `{"query":{"measures":["TrackedEvents.count"],"filters":[{"or":[{"member":"TrackedEvents.event","operator":"equals","values":["page_view"]},{"and":[{"member":"TrackedEvents.eventName","operator":"set"}]}]}]}}`},
		{name: "limit at maximum", body: `{"query":{"measures":["TrackedEvents.count"],"limit":50000}}`},
		{name: "measures of two cubes alone", body: `{"query":{"measures":["TrackedEvents.count","Sessions.count"]}}`},
		{name: "dimensions only", body: `{"query":{"dimensions":["Sessions.agentName"]}}`},
		{name: "blended queries", body: `{"query":[{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"Sessions.startAt","granularity":"day"}]},{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}]}],"queryType":"multi"}`},

		{name: "empty body", body: ``, status: 400, message: "query is missing"},
		{name: "malformed JSON", body: `{"query":`, status: 400, message: "not valid JSON"},
		{name: "not an object", body: `[1,2]`, status: 400, message: "must be a JSON object"},
		{name: "query missing", body: `{"queryType":"multi"}`, status: 400, message: "query is missing"},
		{name: "query null", body: `{"query":null}`, status: 400, message: "query is missing"},
		{name: "query a string", body: `{"query":"TrackedEvents.count"}`, status: 400, message: "query must be a JSON object (a Cube query), or an array of them"},
		{name: "query an empty array", body: `{"query":[]}`, status: 400, message: "query is an empty array of queries"},
		{name: "query an array of a string", body: `{"query":["x"]}`, status: 400, message: "query[0] must be a JSON object (a Cube query)"},
		{name: "too many queries", body: `{"query":[` + strings.TrimSuffix(strings.Repeat(`{"measures":["A.b"]},`, MaxQueries+1), ",") + `]}`, status: 400, message: "query has more than 10 elements"},
		{name: "a bad query in an array", body: `{"query":[{"measures":["A.b"]},{"measures":["A.b"],"timezone":"x'"}]}`, status: 400, message: "query[1].timezone is not a time zone"},
		{name: "unsupported queryType", body: `{"query":{"measures":["Sessions.count"]},"queryType":"regular"}`, status: 400, message: "queryType"},
		{name: "queryType not a string", body: `{"query":{"measures":["Sessions.count"]},"queryType":1}`, status: 400, message: "queryType"},
		{name: "include_token garbage", body: `{"query":{"measures":["Sessions.count"]},"include_token":"maybe"}`, status: 400, message: "include_token"},
		{name: "measures not an array", body: `{"query":{"measures":"TrackedEvents.count"}}`, status: 400, message: "query.measures must be an array of member names"},
		{name: "malformed measure", body: `{"query":{"measures":["TrackedEvents"]}}`, status: 400, message: `query.measures[0] is not a member name`},
		{name: "measure with spaces", body: `{"query":{"measures":["Tracked Events.count"]}}`, status: 400, message: `query.measures[0]`},
		{name: "measure with SQL", body: `{"query":{"measures":["TrackedEvents.count;drop table x"]}}`, status: 400, message: `query.measures[0]`},
		{name: "granularity among measures", body: `{"query":{"measures":["TrackedEvents.count.day"]}}`, status: 400, message: `query.measures[0]`},
		{name: "malformed dimension", body: `{"query":{"measures":["TrackedEvents.count"],"dimensions":["TrackedEvents..docPath"]}}`, status: 400, message: `query.dimensions[0]`},
		{name: "malformed segment", body: `{"query":{"measures":["TrackedEvents.count"],"segments":[""]}}`, status: 400, message: `query.segments[0]`},
		{name: "time dimension missing", body: `{"query":{"measures":["TrackedEvents.count"],"timeDimensions":[{"granularity":"day"}]}}`, status: 400, message: `query.timeDimensions[0].dimension is missing`},
		{name: "time dimension malformed", body: `{"query":{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"utcTime"}]}}`, status: 400, message: `query.timeDimensions[0]`},
		{name: "filter without member", body: `{"query":{"measures":["TrackedEvents.count"],"filters":[{"operator":"set"}]}}`, status: 400, message: `query.filters[0] needs a member`},
		{name: "nested filter malformed", body: `{"query":{"measures":["TrackedEvents.count"],"filters":[{"or":[{"member":"x","operator":"set"}]}]}}`, status: 400, message: `query.filters[0].or[0].member`},
		{name: "order direction", body: `{"query":{"measures":["TrackedEvents.count"],"order":{"TrackedEvents.count":"up"}}}`, status: 400, message: `"asc" or "desc"`},
		{name: "order member", body: `{"query":{"measures":["TrackedEvents.count"],"order":[["count","asc"]]}}`, status: 400, message: `query.order[0] is not a member name of the form "Cube.member": "count"`},
		{name: "limit above maximum", body: `{"query":{"measures":["TrackedEvents.count"],"limit":50001}}`, status: 400, message: "query.limit is 50001, outside 1 to 50000"},
		{name: "limit negative", body: `{"query":{"measures":["TrackedEvents.count"],"limit":-1}}`, status: 400, message: "query.limit is -1, outside 1 to 50000"},
		{name: "limit fraction", body: `{"query":{"measures":["TrackedEvents.count"],"limit":1.5}}`, status: 400, message: "query.limit must be a whole number"},
		{name: "limit string", body: `{"query":{"measures":["TrackedEvents.count"],"limit":"10"}}`, status: 400, message: "query.limit must be a whole number"},
		{name: "offset negative", body: `{"query":{"measures":["TrackedEvents.count"],"offset":-5}}`, status: 400, message: "query.offset"},
		{name: "TrackedEvents with a Sessions dimension", body: `{"query":{"measures":["TrackedEvents.count"],"dimensions":["Sessions.agentName"]}}`, status: 400, message: "query measures TrackedEvents, so its dimensions must be TrackedEvents members: Sessions.agentName is not"},
		{name: "Sessions with a TrackedEvents time dimension", body: `{"query":{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}]}}`, status: 400, message: "query measures Sessions, so its timeDimensions must be Sessions members: TrackedEvents.derivedTstamp is not"},
		{name: "Sessions with a TrackedEvents filter", body: `{"query":{"measures":["Sessions.count"],"filters":[{"member":"TrackedEvents.event","operator":"equals","values":["page_view"]}]}}`, status: 400, message: "so its filters must be Sessions members"},
		{name: "ReturningUsers with a Sessions segment", body: `{"query":{"measures":["ReturningUsers.allSessionsCount"],"segments":["TrackedEvents.knownUsers"]}}`, status: 400, message: "so its segments must be ReturningUsers members"},
		{name: "two measured cubes and a dimension", body: `{"query":{"measures":["TrackedEvents.count","Sessions.count"],"dimensions":["Sessions.agentName"]}}`, status: 400, message: "query measures several cubes (Sessions, TrackedEvents)"},
		{name: "nested filter on another cube", body: `{"query":{"measures":["TrackedEvents.count"],"filters":[{"and":[{"member":"Sessions.osName","operator":"set"}]}]}}`, status: 400, message: "Sessions.osName is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBody([]byte(tt.body))
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("ParseBody: %v", err)
				}
				if b.IncludeToken != tt.token || len(b.Queries) == 0 {
					t.Fatalf("ParseBody = %+v", b)
				}
				return
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("ParseBody error = %v; want *Error", err)
			}
			if !strings.Contains(re.Error(), tt.message) {
				t.Fatalf("ParseBody error %q; want it to contain %q", re.Error(), tt.message)
			}
		})
	}
}

// The query sent on is the encoding of what was checked, not the caller's
// bytes: spacing, key order and duplicate-free keys are the API's own.
func TestParseBodyReencodesTheQuery(t *testing.T) {
	q := `{ "ungrouped":false,"timezone":"UTC",  "limit": 5,"measures":["TrackedEvents.count"]}`
	b, err := ParseBody([]byte(`{"query":` + q + `}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"measures":["TrackedEvents.count"],"limit":5,"timezone":"UTC","ungrouped":false}`
	if got := string(b.Queries[0].AppendJSON(nil)); got != want {
		t.Fatalf("query = %s; want %s", got, want)
	}
}

func TestParseBodyTooLarge(t *testing.T) {
	body := `{"query":{"measures":["TrackedEvents.count"]},"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	_, err := ParseBody([]byte(body))
	if err != ErrBodyTooLarge {
		t.Fatalf("ParseBody(%d bytes) = %v; want ErrBodyTooLarge", len(body), err)
	}
}

func TestParseBodyDeepFilters(t *testing.T) {
	f := `{"member":"TrackedEvents.event","operator":"set"}`
	for range MaxFilterDepth + 2 {
		f = `{"or":[` + f + `]}`
	}
	_, err := ParseBody([]byte(`{"query":{"measures":["TrackedEvents.count"],"filters":[` + f + `]}}`))
	var re *Error
	if !errors.As(err, &re) || !strings.Contains(re.Error(), "deeper than") {
		t.Fatalf("deep filters: %v", err)
	}
}

func TestIncludeTokenParam(t *testing.T) {
	for in, want := range map[string]bool{"": false, "true": true, "1": true, "false": false, "0": false} {
		got, err := IncludeTokenParam(in)
		if err != nil || got != want {
			t.Errorf("IncludeTokenParam(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := IncludeTokenParam("yes please"); err == nil {
		t.Error("IncludeTokenParam accepted garbage")
	}
}

// FuzzParseBody: a body is accepted with a query that encodes and parses
// again, or refused with a message; nothing panics.
func FuzzParseBody(f *testing.F) {
	f.Add([]byte(seed.Body(seed.TrackedEvents)))
	f.Add([]byte(`{"query":{"measures":["A.b"]},"include_token":"true","queryType":null,"x":[1,{"y":2}]}`))
	f.Add([]byte(`{"query":{"measures":["A.b"]},"include_token":{}}`))
	// The budget's shapes: a blend, compared ranges, a relative range by hour.
	f.Add([]byte(`{"query":[{"dimensions":["A.b","A.c.day"],"limit":50000},{"measures":["A.d"],"limit":9}]}`))
	f.Add([]byte(`{"query":{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","granularity":"hour","compareDateRange":["last 7 days","from 3 hours ago to now",["2024-01-01","2024-01-02T10:00:00"]]}],"limit":5000}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBody(data)
		if err != nil {
			var re *Error
			if err != ErrBodyTooLarge && (!errors.As(err, &re) || re.Error() == "") {
				t.Fatalf("error %v is not a refusal with a message", err)
			}
			return
		}
		enc := Call{Queries: b.Queries, Blend: b.Blend}.AppendQuery(nil)
		again, err := ParseBody([]byte(`{"query":` + string(enc) + `}`))
		if err != nil {
			t.Fatalf("the query's encoding %s is refused: %v", enc, err)
		}
		if got := (Call{Queries: again.Queries, Blend: again.Blend}).AppendQuery(nil); string(got) != string(enc) {
			t.Fatalf("encoded again:\n%s\nfirst:\n%s", got, enc)
		}
	})
}

func TestRead(t *testing.T) {
	q := url.QueryEscape(`{"measures":["TrackedEvents.count"]}`)
	tests := []struct {
		name, method, target, body string
		queries                    int
		blend, token               bool
		err                        string // "" for none
	}{
		{name: "POST body", method: "POST", target: "/x", body: `{"query":{"measures":["A.b"]}}`, queries: 1},
		{name: "POST include_token in the query string", method: "POST", target: "/x?include_token=true", body: `{"query":{"measures":["A.b"]}}`, queries: 1, token: true},
		{name: "POST blend", method: "POST", target: "/x", body: `{"query":[{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","granularity":"day"}]},{"measures":["C.d"],"timeDimensions":[{"dimension":"C.t","granularity":"day"}]}]}`, queries: 2, blend: true},
		{name: "GET query string", method: "GET", target: "/x?queryType=multi&query=" + q, queries: 1},
		{name: "GET include_token", method: "GET", target: "/x?include_token=1&query=" + q, queries: 1, token: true},
		{name: "GET blend", method: "GET", target: "/x?query=" + url.QueryEscape(`[{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","granularity":"day"}]}]`), queries: 1, blend: true},
		{name: "blend without a time dimension", method: "POST", target: "/x", body: `{"query":[{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","granularity":"day"}]},{"measures":["C.d"]}]}`,
			err: "query[1].timeDimensions must begin with a time dimension with a granularity"},
		{name: "blend's first time dimension without a granularity", method: "GET", target: "/x?query=" + url.QueryEscape(`[{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","dateRange":"last week"},{"dimension":"A.t","granularity":"day"}]}]`),
			err: "query[0].timeDimensions must begin with a time dimension with a granularity"},
		{name: "GET without query", method: "GET", target: "/x", err: "query is missing"},
		{name: "GET other queryType", method: "GET", target: "/x?queryType=regular&query=" + q, err: "queryType is not supported"},
		{name: "GET bad JSON", method: "GET", target: "/x?query=%7B", err: "not valid JSON"},
		{name: "GET trailing data", method: "GET", target: "/x?query=" + q + "x", err: "after its JSON value"},
		{name: "POST too large", method: "POST", target: "/x", body: strings.Repeat(" ", MaxBodyBytes+1), err: ErrBodyTooLarge.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			c, err := Read(httptest.NewRecorder(), r, "5", true)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ProjectID != 5 || len(c.Queries) != tt.queries || c.Blend != tt.blend || c.IncludeToken != tt.token {
				t.Fatalf("got %+v, want %d queries, blend %v, token %v", c, tt.queries, tt.blend, tt.token)
			}
		})
	}
}

package request

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/attacks"
	"productanalytics/internal/seed"
	"productanalytics/shared/dashboards"
)

// validQueries are queries real clients send, and every field Cube
// documents in use.
func validQueries() map[string]string {
	qs := map[string]string{
		"seed tracked events": seed.TrackedEvents,
		"seed sessions":       seed.Sessions,
		"every field": `{"measures":["TrackedEvents.count","TrackedEvents.uniqueUsersCount"],
			"dimensions":["TrackedEvents.pageUrlpath","TrackedEvents.derivedTstamp.week"],
			"segments":["TrackedEvents.knownUsers"],
			"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"quarter","dateRange":["2024-01-01","2024-03-31T23:59:59.999"]}],
			"filters":[{"member":"TrackedEvents.event","operator":"equals","values":["page_view","link_click"]},
				{"or":[{"dimension":"TrackedEvents.pageTitle","operator":"contains","values":["café <b>&\"quotes\"'"]},
					{"and":[{"member":"TrackedEvents.userId","operator":"set"},{"member":"TrackedEvents.count","operator":"gt","values":[10, 2.5, true]}]}]},
				{"member":"TrackedEvents.derivedTstamp","operator":"inDateRange","values":["2024-01-01","2024-01-31 12:00:00Z"]}],
			"order":{"TrackedEvents.count":"desc","TrackedEvents.pageUrlpath":"asc"},
			"limit":50000,"offset":100,"timezone":"America/Los_Angeles","total":true,"ungrouped":false,"renewQuery":false,"responseFormat":"compact"}`,
		"compare date ranges": `{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"Sessions.startAt","granularity":"day","compareDateRange":["this week",["2024-01-01","2024-01-07"]]}]}`,
		"relative range":      `{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"Sessions.startAt","dateRange":"from 7 days ago to now"}],"timezone":"Etc/GMT+5"}`,
		"one-date range":      `{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"Sessions.startAt","dateRange":["2024-02-29"]}]}`,
		"order pairs, empty":  `{"measures":["Sessions.count"],"order":[]}`,
		"nulls are absent":    `{"measures":["Sessions.count"],"dimensions":null,"filters":null,"timezone":null}`,
		"granularity only":    `{"timeDimensions":[{"dimension":"Sessions.startAt","granularity":"month"}]}`,
		"two cubes measured":  `{"measures":["TrackedEvents.count","Sessions.count"]}`,
	}
	for _, q := range dashboards.Queries(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) {
		qs["dashboard "+q.Name] = string(q.Query)
	}
	return qs
}

func TestParseQueryAccepts(t *testing.T) {
	for name, q := range validQueries() {
		t.Run(name, func(t *testing.T) {
			parsed, err := ParseQuery([]byte(q))
			if err != nil {
				t.Fatalf("ParseQuery: %v", err)
			}
			enc := parsed.AppendJSON(nil)
			if err := sameQuery(q, string(enc)); err != nil {
				t.Fatalf("the encoding sent to Cube means something else: %v\ngot  %s\nfrom %s", err, enc, q)
			}
			again, err := ParseQuery(enc)
			if err != nil {
				t.Fatalf("the encoding is refused: %v\n%s", err, enc)
			}
			if got := again.AppendJSON(nil); string(got) != string(enc) {
				t.Fatalf("the encoding changes when encoded again:\n%s\n%s", enc, got)
			}
		})
	}
}

// sameQuery reports whether two query encodings mean the same to Cube:
// equal as JSON once Cube's own normalizations are applied (order as
// pairs, dimension as member, nulls as absent, values as text).
func sameQuery(a, b string) error {
	var x, y map[string]any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		return err
	}
	normalize(x)
	normalize(y)
	if !reflect.DeepEqual(x, y) {
		return fmt.Errorf("%v != %v", x, y)
	}
	return nil
}

func normalize(q map[string]any) {
	for k, v := range q {
		if v == nil {
			delete(q, k)
		}
	}
	// An object order becomes pairs; key order is lost by the map, so
	// sort both forms by member for the comparison.
	if o, ok := q["order"].(map[string]any); ok {
		var pairs []any
		for k, v := range o {
			pairs = append(pairs, []any{k, v})
		}
		q["order"] = pairs
	}
	if pairs, ok := q["order"].([]any); ok {
		strs := make([]string, len(pairs))
		for i, p := range pairs {
			strs[i] = fmt.Sprint(p)
		}
		if len(strs) > 0 {
			sortStrings(strs)
		}
		q["order"] = strs
	}
	if fs, ok := q["filters"].([]any); ok {
		normalizeFilters(fs)
	}
}

func normalizeFilters(fs []any) {
	for _, f := range fs {
		m := f.(map[string]any)
		if d, ok := m["dimension"]; ok {
			m["member"] = d
			delete(m, "dimension")
		}
		for _, k := range []string{"or", "and"} {
			if sub, ok := m[k].([]any); ok {
				normalizeFilters(sub)
			}
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestOrderKeepsTheCallersOrder: an object's keys are read in order, so
// the pairs sent to Cube order the rows as the caller asked.
func TestOrderKeepsTheCallersOrder(t *testing.T) {
	q, err := ParseQuery([]byte(`{"measures":["A.z","A.a"],"order":{"A.z":"desc","A.a":"asc"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(q.AppendJSON(nil)), `{"measures":["A.z","A.a"],"order":[["A.z","desc"],["A.a","asc"]]}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestAttacksAreRefused: every attack is refused with a message naming the
// field it came through.
func TestAttacksAreRefused(t *testing.T) {
	for _, a := range attacks.All(2) {
		t.Run(a.Name, func(t *testing.T) {
			q, err := ParseQuery([]byte(a.Query))
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("accepted: %s", q.AppendJSON(nil))
			}
			if !strings.HasPrefix(re.Field, a.Field) {
				t.Fatalf("refused as %q; want it to name %s", re.Error(), a.Field)
			}
		})
	}
}

func TestParseQueryRefuses(t *testing.T) {
	many := func(n int, item string) string {
		return strings.TrimSuffix(strings.Repeat(item+",", n), ",")
	}
	deep := `{"member":"A.b","operator":"set"}`
	for range MaxFilterDepth {
		deep = `{"or":[` + deep + `]}`
	}
	tests := []struct{ name, query, want string }{
		{"not an object", `[1]`, "query must be a JSON object"},
		{"trailing data", `{"measures":["A.b"]} {}`, "after its JSON value"},
		{"duplicate key", `{"measures":["A.b"],"measures":["A.c"]}`, "query.measures appears twice"},
		{"nothing to measure", `{"segments":["A.b"]}`, "query needs measures, dimensions or a time dimension with a granularity"},
		{"too many measures", `{"measures":[` + many(MaxMembers+1, `"A.b"`) + `]}`, "query.measures has more than 100 elements"},
		{"too many filters", `{"measures":["A.b"],"filters":[` + many(MaxFilters+1, `{"member":"A.b","operator":"set"}`) + `]}`, "query.filters has more than 100 elements"},
		{"too many filters in groups", `{"measures":["A.b"],"filters":[` + many(60, `{"or":[{"member":"A.b","operator":"set"}]}`) + `]}`, "past 100"},
		{"too deep", `{"measures":["A.b"],"filters":[` + deep + `]}`, "deeper than 8 levels"},
		{"too many values", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"in","values":[` + many(MaxValues+1, `"x"`) + `]}]}`, "values has more than 1000 elements"},
		{"value too long", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"equals","values":["` + strings.Repeat("x", MaxValueLength+1) + `"]}]}`, "at most 4096 bytes"},
		{"value null", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"equals","values":[null]}]}`, "must be a string, a number or a boolean"},
		{"no values", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"equals"}]}`, "values is missing"},
		{"values for set", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"set","values":["x"]}]}`, "takes no values"},
		{"one date for a range", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"inDateRange","values":["2024-01-01"]}]}`, "must be 2 date(s)"},
		{"not a date", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"afterDate","values":["2024-02-30"]}]}`, "is not a date"},
		{"member and dimension", `{"measures":["A.b"],"filters":[{"member":"A.b","dimension":"A.c","operator":"set"}]}`, "both member and dimension"},
		{"group with a member", `{"measures":["A.b"],"filters":[{"member":"A.b","or":[{"member":"A.b","operator":"set"}]}]}`, "takes nothing else"},
		{"empty group", `{"measures":["A.b"],"filters":[{"and":[]}]}`, "empty and/or group"},
		{"both ranges", `{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","dateRange":"today","compareDateRange":["today"]}]}`, "both dateRange and compareDateRange"},
		{"two compared", `{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","compareDateRange":["today"]},{"dimension":"A.u","compareDateRange":["today"]}]}`, "compareDateRange for one time dimension only"},
		{"three dates", `{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","dateRange":["2024-01-01","2024-01-02","2024-01-03"]}]}`, "has more than 2 elements"},
		{"quarter among dimensions", `{"dimensions":["A.t.quarter"]}`, "query.dimensions[0] is not a member name"},
		{"granularity in order", `{"measures":["A.b"],"order":{"A.t.day":"asc"}}`, "is not a member name"},
		{"upper-case direction", `{"measures":["A.b"],"order":[["A.b","DESC"]]}`, `"asc" or "desc"`},
		{"order triple", `{"measures":["A.b"],"order":[["A.b","asc","x"]]}`, "has more than 2 elements"},
		{"unknown time dimension field", `{"measures":["A.b"],"timeDimensions":[{"dimension":"A.t","sql":"x"}]}`, "query.timeDimensions[0].sql is not a field of a time dimension"},
		{"unknown filter field", `{"measures":["A.b"],"filters":[{"member":"A.b","operator":"set","sql":"x"}]}`, "query.filters[0].sql is not a field of a filter"},
		{"odd unknown key is quoted", `{"measures":["A.b"],"a\"b":1}`, `query."a\"b" is not a field`},
		{"zone of the host", `{"measures":["A.b"],"timezone":"Local"}`, "query.timezone is not a time zone name"},
		{"zone that does not exist", `{"measures":["A.b"],"timezone":"Mars/Olympus_Mons"}`, "query.timezone is not a time zone name"},
		{"zone with empty part", `{"measures":["A.b"],"timezone":"America//New_York"}`, "query.timezone is not a time zone name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery([]byte(tt.query))
			if err == nil {
				t.Fatalf("accepted: %s", q.AppendJSON(nil))
			}
			var re *Error
			if !errors.As(err, &re) || !strings.Contains(re.Error(), tt.want) {
				t.Fatalf("error %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestManyCubesIsRefusedAtOnce: a body naming 100,000 cubes stops at the
// bound, before any cross-field rule runs.
func TestManyCubesIsRefusedAtOnce(t *testing.T) {
	_, err := ParseBody(manyCubes(100000))
	var re *Error
	if !errors.As(err, &re) || re.Error() != "query.measures has more than 100 elements" {
		t.Fatalf("error %v", err)
	}
}

// manyCubes is a body whose measures name n different cubes (100,000 in
// about 800 KB).
func manyCubes(n int) []byte {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var b strings.Builder
	b.WriteString(`{"query":{"measures":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for v := i; ; v /= len(digits) {
			b.WriteByte(digits[v%len(digits)])
			if v < len(digits) {
				break
			}
		}
		b.WriteString(`.m"`)
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

// largeBody is a valid body of about 1 MB: one filter with the most values
// of the most length.
func largeBody() []byte {
	v := `"` + strings.Repeat("v", 1000) + `"`
	values := strings.TrimSuffix(strings.Repeat(v+",", 1000), ",")
	return []byte(`{"query":{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.pageUrl","operator":"in","values":[` + values + `]}]}}`)
}

func TestLargeBodyIsAccepted(t *testing.T) {
	body := largeBody()
	if len(body) < 900<<10 || len(body) > MaxBodyBytes {
		t.Fatalf("the large body is %d bytes", len(body))
	}
	if _, err := ParseBody(body); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkParseBody is the cost of checking and re-encoding a body: the
// seed's example, a dashboard query, a valid 1 MB body, and a refused body
// naming 100,000 cubes (800 KB).
func BenchmarkParseBody(b *testing.B) {
	for _, bc := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"seed", []byte(seed.Body(seed.TrackedEvents)), true},
		{"dashboard", []byte(seed.Body(string(dashboards.Queries(time.Now())[0].Query))), true},
		{"1MB", largeBody(), true},
		{"100k-cubes", manyCubes(100000), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				body, err := ParseBody(bc.body)
				if (err == nil) != bc.ok {
					b.Fatal(err)
				}
				if err == nil {
					Call{Queries: body.Queries, Blend: body.Blend}.AppendQuery(nil)
				}
			}
		})
	}
}

// safeText is what every string of an encoded query other than a filter
// value is made of: no quote, backslash or control character can occur.
var safeText = regexp.MustCompile(`^[A-Za-z0-9_+\-/:. ]*$`)

// queryKeys lists, for each kind of object in an encoded query, the keys it
// may have: checked on the encoding independently of the parser.
var queryKeys = map[string][]string{
	"query":         {"measures", "dimensions", "segments", "timeDimensions", "filters", "order", "limit", "offset", "timezone", "total", "ungrouped", "renewQuery", "responseFormat"},
	"timeDimension": {"dimension", "granularity", "dateRange", "compareDateRange"},
	"filter":        {"member", "operator", "values", "or", "and"},
}

// checkEncoding verifies an encoded query against queryKeys and safeText.
func checkEncoding(t *testing.T, enc []byte) {
	t.Helper()
	var q map[string]any
	if err := json.Unmarshal(enc, &q); err != nil {
		t.Fatalf("the encoding is not JSON: %v\n%s", err, enc)
	}
	var walk func(kind string, v any)
	strs := func(v any) {
		var each func(any)
		each = func(v any) {
			switch x := v.(type) {
			case string:
				if !safeText.MatchString(x) {
					t.Fatalf("string %q in the encoding is outside the safe text", x)
				}
			case []any:
				for _, e := range x {
					each(e)
				}
			case float64, bool:
			default:
				t.Fatalf("unexpected %T in the encoding", v)
			}
		}
		each(v)
	}
	walk = func(kind string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("a %s is a %T", kind, v)
		}
		for k, val := range m {
			if !contains(queryKeys[kind], k) {
				t.Fatalf("key %q of a %s is not allowed", k, kind)
			}
			switch {
			case kind == "query" && k == "timeDimensions":
				for _, td := range val.([]any) {
					walk("timeDimension", td)
				}
			case kind == "query" && k == "filters", kind == "filter" && (k == "or" || k == "and"):
				for _, f := range val.([]any) {
					walk("filter", f)
				}
			case kind == "filter" && k == "values":
				// Any text; encoding/json escaped it.
			default:
				strs(val)
			}
		}
	}
	walk("query", q)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FuzzParseQuery: whatever is accepted encodes to allowed keys with values
// in their grammar, and its encoding is accepted again unchanged.
func FuzzParseQuery(f *testing.F) {
	for _, q := range validQueries() {
		f.Add([]byte(q))
	}
	for _, a := range attacks.All(2) {
		f.Add([]byte(a.Query))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := ParseQuery(data)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Error() == "" {
				t.Fatalf("error %v is not a refusal with a message", err)
			}
			return
		}
		enc := q.AppendJSON(nil)
		checkEncoding(t, enc)
		again, err := ParseQuery(enc)
		if err != nil {
			t.Fatalf("the encoding %s is refused: %v", enc, err)
		}
		if got := again.AppendJSON(nil); string(got) != string(enc) {
			t.Fatalf("encoded again:\n%s\nfirst:\n%s", got, enc)
		}
	})
}

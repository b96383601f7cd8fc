package request

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// dims is a query's dimensions: n TrackedEvents members.
func dims(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf(`"TrackedEvents.d%d"`, i)
	}
	return "[" + strings.Join(names, ",") + "]"
}

// byGranularity is a TrackedEvents count by time at g over dateRange (a
// JSON value), or with compareDateRange when compare is set, with more
// fields of the query when given ("limit":50000).
func byGranularity(g, dateRange string, compare bool, more ...string) string {
	key := "dateRange"
	if compare {
		key = "compareDateRange"
	}
	extra := ""
	for _, m := range more {
		extra += "," + m
	}
	return fmt.Sprintf(`{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":%q,%q:%s}]%s}`, g, key, dateRange, extra)
}

// budgetCase is a body and the refusal it gets: field "" for none, and the
// words its problem must hold.
type budgetCase struct {
	name, body string
	field      string
	problem    []string
}

func runBudgetCases(t *testing.T, cases []budgetCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBody([]byte(tt.body))
			var re *Error
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.field == "":
				return
			case !errors.As(err, &re):
				t.Fatalf("got %v, want a refusal of %s", err, tt.field)
			case re.Field != tt.field:
				t.Fatalf("refused %q (%v), want %q", re.Field, err, tt.field)
			}
			for _, w := range tt.problem {
				if !strings.Contains(re.Problem, w) {
					t.Errorf("the problem %q does not say %q", re.Problem, w)
				}
			}
		})
	}
}

func TestCellBudget(t *testing.T) {
	q := func(fields string) string { return `{"query":{` + fields + `}}` }
	// A time dimension with a granularity is two columns; so is a
	// dimension with one.
	granular := `"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}]`
	runBudgetCases(t, []budgetCase{
		{name: "an export of 50,000 rows of 12 columns", body: q(`"dimensions":` + dims(12) + `,"ungrouped":true,"limit":50000`)},
		{name: "one column more", body: q(`"dimensions":` + dims(12) + `,"measures":["TrackedEvents.count"],"limit":50000`),
			field: "query", problem: []string{"650,000 answer cells", "limit 50000 × 13 columns", "the budget is 600,000", "lower query.limit or ask for fewer members"}},
		{name: "one row more", body: q(`"dimensions":` + dims(12) + `,"limit":50000,"offset":7`)},
		{name: "ungrouped does not lower the rows", body: q(`"dimensions":` + dims(25) + `,"ungrouped":true,"limit":50000`),
			field: "query", problem: []string{"1,250,000 answer cells"}},
		{name: "just under, by rows", body: q(`"dimensions":` + dims(25) + `,"limit":24000`)},
		{name: "just over, by rows", body: q(`"dimensions":` + dims(25) + `,"limit":24001`), field: "query"},
		{name: "no limit: Cube's default rows", body: q(`"dimensions":` + dims(60))},
		{name: "no limit, just over", body: q(`"dimensions":` + dims(61)),
			field: "query", problem: []string{"Cube's default limit 10000 × 61 columns"}},
		{name: "a granularity is two columns", body: q(`"dimensions":` + dims(10) + `,` + granular + `,"limit":50000`)},
		{name: "a granularity is two columns, just over", body: q(`"dimensions":` + dims(11) + `,` + granular + `,"limit":50000`),
			field: "query", problem: []string{"× 13 columns"}},
		{name: "a time time dimension among dimensions is two columns",
			body: q(`"dimensions":["TrackedEvents.derivedTstamp.day"],"measures":["TrackedEvents.count"],"limit":50000`)},
		{name: "a time dimension without granularity is no column",
			body: q(`"dimensions":` + dims(12) + `,"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","dateRange":"last 7 days"}],"limit":50000`)},
		// count, the time twice, the compareDateRange column: 4 columns per range.
		{name: "12 compared ranges at the budget", body: `{"query":` + byGranularity("day", compared(12, `"last 7 days"`), true, `"limit":12500`) + `}`},
		{name: "12 compared ranges, one row over", body: `{"query":` + byGranularity("day", compared(12, `"last 7 days"`), true, `"limit":12501`) + `}`,
			field: "query", problem: []string{"600,048 answer cells", "limit 12501 × 4 columns × 12 compared date ranges", "compare fewer date ranges"}},
	})
}

// compared is a compareDateRange of n copies of one range.
func compared(n int, r string) string { return "[" + strings.Repeat(r+",", n-1) + r + "]" }

func TestBlendBudget(t *testing.T) {
	blend := func(n int, query string) string {
		return `{"query":[` + strings.Repeat(query+",", n-1) + query + `]}`
	}
	// 3 dimensions, a time dimension by day (its two columns, as Cube
	// writes them), the blend's time key: 6 columns of 50,000 rows each.
	byDay := `"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}]`
	five := `{"dimensions":` + dims(3) + `,` + byDay + `,"limit":50000}`
	runBudgetCases(t, []budgetCase{
		{name: "two at the budget", body: blend(2, five)},
		{name: "three over it", body: blend(3, five),
			field: "query", problem: []string{"900,000 answer cells over its 3 queries", "send fewer queries at once"}},
		{name: "ten small ones", body: blend(10, `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}],"limit":1000}`)},
		{name: "eleven", body: blend(11, `{"measures":["TrackedEvents.count"]}`), field: "query", problem: []string{"more than 10"}},
		{name: "one over on its own", body: `{"query":[{"measures":["TrackedEvents.count"],` + byDay + `},{"dimensions":` + dims(12) + `,` + byDay + `,"limit":50000}]}`,
			field: "query[1]", problem: []string{"lower query[1].limit"}},
		{name: "a blend's other rules name the query", body: `{"query":[{"measures":["Sessions.count"]},{"measures":["Sessions.count"],"dimensions":["TrackedEvents.event"]}]}`,
			field: "query[1]", problem: []string{"must be Sessions members"}},
		{name: "a blend's query without a time dimension", body: `{"query":[{"measures":["TrackedEvents.count"],` + byDay + `},{"measures":["TrackedEvents.count"]}]}`,
			field: "query[1].timeDimensions", problem: []string{"must begin with a time dimension with a granularity"}},
	})
}

func TestBucketBudget(t *testing.T) {
	body := func(g, dateRange string) string { return `{"query":` + byGranularity(g, dateRange, false) + `}` }
	// 1900-01-01 and 49,999 days later: 50,000 days.
	last := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, MaxBuckets-1).Format(time.DateOnly)
	over := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, MaxBuckets).Format(time.DateOnly)
	runBudgetCases(t, []budgetCase{
		{name: "a day of seconds", body: body("second", `["2024-01-01"]`),
			field: "query.timeDimensions[0].dateRange", problem: []string{"spans 86,400 second buckets", "at most 50,000", "coarser granularity or a shorter range"}},
		{name: "50,000 minutes", body: body("minute", `["2024-01-01","2024-02-04T17:19:59"]`)},
		{name: "50,001 minutes", body: body("minute", `["2024-01-01","2024-02-04T17:20:00"]`),
			field: "query.timeDimensions[0].dateRange", problem: []string{"spans 50,001 minute buckets"}},
		{name: "50,000 days", body: body("day", `["1900-01-01",`+`"`+last+`"]`)},
		{name: "50,001 days", body: body("day", `["1900-01-01",`+`"`+over+`"]`), field: "query.timeDimensions[0].dateRange"},
		{name: "ten thousand years by month", body: body("month", `["0000-01-01","9999-12-31"]`),
			field: "query.timeDimensions[0].dateRange", problem: []string{"spans 120,000 month buckets"}},
		{name: "ten thousand years by year", body: body("year", `["0000-01-01","9999-12-31"]`)},
		{name: "backwards: none", body: body("second", `["2024-06-01","2024-01-01"]`)},
		{name: "last 7 days by minute", body: body("minute", `"last 7 days"`)},
		{name: "last 7 days by second", body: body("second", `"last 7 days"`),
			field: "query.timeDimensions[0].dateRange", problem: []string{"may span up to 604,800 second buckets"}},
		{name: "last 34 days by minute", body: body("minute", `"last 34 days"`)},
		{name: "last 35 days by minute", body: body("minute", `"Last 35 Days"`), field: "query.timeDimensions[0].dateRange"},
		{name: "last 50000 days by day", body: body("day", `"last 50000 days"`)},
		{name: "last 50001 days by day", body: body("day", `"last 50001 days"`), field: "query.timeDimensions[0].dateRange"},
		{name: "today by minute", body: body("minute", `"today"`)},
		{name: "today by second", body: body("second", `"today"`), field: "query.timeDimensions[0].dateRange"},
		{name: "this year by hour", body: body("hour", `"this year"`)},
		{name: "this year by minute", body: body("minute", `"this year"`), field: "query.timeDimensions[0].dateRange"},
		{name: "from 7 days ago to now by hour", body: body("hour", `"from 7 days ago to now"`)},
		{name: "from 1000 years ago to now by second", body: body("second", `"from 1000 years ago to now"`),
			field: "query.timeDimensions[0].dateRange", problem: []string{"may span up to 31,622,486,400 second buckets"}},
		{name: "from 1000 years ago to now by day", body: body("day", `"from 1000 years ago to now"`), field: "query.timeDimensions[0].dateRange"},
		{name: "from 1000 years ago to now by month", body: body("month", `"from 1000 years ago to now"`)},
		{name: "a count past any bound", body: body("year", `"last 99999999999999999999 years"`),
			field: "query.timeDimensions[0].dateRange", problem: []string{"may span up to 1,002,739,728 year buckets"}},
		{name: "what Cube leaves to chrono, by day", body: body("day", `"from monday to now"`)},
		{name: "what Cube leaves to chrono, by hour", body: body("hour", `"from monday to now"`),
			field: "query.timeDimensions[0].dateRange", problem: []string{`known only once Cube reads it ("from monday to now")`, "a granularity of day or coarser"}},
		{name: "no granularity: no buckets", body: `{"query":{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","dateRange":"from 1000 years ago to now"}]}}`},
		{name: "each compared range", body: `{"query":` + byGranularity("hour", `["last 7 days","this year","last year"]`, true) + `}`},
		{name: "each compared range, one over", body: `{"query":` + byGranularity("hour", `["last 7 days",["2020-01-01","2030-01-01"]]`, true) + `}`,
			field: "query.timeDimensions[0].compareDateRange[1]", problem: []string{"spans 87,696 hour buckets"}},
		{name: "the attack: 12 × 1000 years by second", body: `{"query":` + byGranularity("second", compared(12, `"from 1000 years ago to now"`), true, `"limit":50000`) + `}`,
			field: "query.timeDimensions[0].compareDateRange[0]"},
	})
}

// TestBuckets: the count of buckets a range spans, against the calendar.
func TestBuckets(t *testing.T) {
	tests := []struct {
		dates []string
		g     string
		want  int64
	}{
		{[]string{"2024-01-01"}, "hour", 24},
		{[]string{"2024-01-01T10:30:00"}, "hour", 1},
		{[]string{"2024-01-01T10:30:00", "2024-01-01T11:00:00"}, "hour", 2},
		{[]string{"2024-01-07", "2024-01-08"}, "week", 2}, // a Sunday, then a Monday
		{[]string{"2024-01-08", "2024-01-14"}, "week", 1}, // Monday to Sunday
		{[]string{"1970-01-01", "1970-01-04"}, "week", 1},
		{[]string{"1969-12-28", "1969-12-29"}, "week", 2},
		{[]string{"2024-01-31", "2024-02-01"}, "month", 2},
		{[]string{"2024-03-31", "2024-04-01"}, "quarter", 2},
		{[]string{"2024-02-28", "2024-03-01"}, "day", 3}, // a leap year
		{[]string{"2023-12-31T23:59:59.999Z", "2024-01-01 00:00:00"}, "year", 2},
		{[]string{"0000-02-28", "0000-03-01"}, "day", 3}, // year 0 leaps too
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.dates, tt.g), func(t *testing.T) {
			got, ok := DateRange{Dates: tt.dates}.buckets(tt.g)
			if !ok || got != tt.want {
				t.Fatalf("%d, %v; want %d", got, ok, tt.want)
			}
		})
	}
}

// TestRelativeSpan: the relative ranges measured, each as Cube's dateParser
// reads it, and those left unmeasured.
func TestRelativeSpan(t *testing.T) {
	const day = 86400
	tests := []struct {
		in      string
		span    int64
		aligned string
		ok      bool
	}{
		{"this week", 7 * day, "week", true},
		{"last month", 31 * day, "month", true},
		{"next quarter", 92 * day, "quarter", true},
		{"last 7 days", 7 * day, "day", true},
		{"last 3 months", 93 * day, "month", true},
		{"next 2 hours", 7200, "hour", true},
		{"last 0 days", 0, "day", true},
		{"today", day, "day", true},
		{"Yesterday", day, "day", true},
		// Cube's first pattern matches anywhere, and first.
		{"from 3 days ago to last week", 7 * day, "week", true},
		{"from 7 days ago to today", day, "day", true},
		{"from 7 days ago to now", 8 * day, "day", true},
		{"from 90 minutes ago to now", 91 * 60, "minute", true},
		{"from 2 years ago to now", 2*366*day + day, "day", true},
		{"from monday to now", 0, "", false},
		{"from 7 days ago to friday", 0, "", false},
		{"2 weeks ago", 0, "", false},
		{"january 2024", 0, "", false},
		{"last7 days", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			span, aligned, ok := relativeSpan(tt.in)
			if span != tt.span || aligned != tt.aligned || ok != tt.ok {
				t.Fatalf("%d %q %v; want %d %q %v", span, aligned, ok, tt.span, tt.aligned, tt.ok)
			}
		})
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 600000: "600,000", 1234567: "1,234,567"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q; want %q", n, got, want)
		}
	}
}

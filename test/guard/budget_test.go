package guard

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"productanalytics/shared/request"
)

// budgetCall is a call (a query, or an array of them) and the field its
// refusal names: "" when it is within the budget.
type budgetCall struct {
	name, call, field string
}

// TestGuardAgreesOnTheBudget: the API and the guard refuse the same calls
// for their cost, naming the same field, at each bound, just under it and
// just over it; and Cube's guard, on each query as Cube hands it over
// (relative ranges become dates, compared ranges one query each), accepts
// every call within the budget.
func TestGuardAgreesOnTheBudget(t *testing.T) {
	cases := budgetCalls()
	calls := make([]string, len(cases))
	for i, c := range cases {
		calls[i] = c.call
	}
	answers := runGuard(t, calls)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseCall(c.call)
			var re *request.Error
			api := ""
			switch {
			case err != nil && !errors.As(err, &re):
				t.Fatalf("the API's error is not a refusal: %v", err)
			case err != nil:
				api = re.Field
			}
			a := answers[i]
			guard := a.Raw.Field
			if a.Raw.Error != "" {
				t.Fatalf("the guard failed: %s", a.Raw.Error)
			}
			if api != c.field || guard != c.field || (c.field == "") != a.Raw.OK {
				t.Fatalf("the API refuses %q (%v), the guard %q; want %q", api, err, guard, c.field)
			}
			if c.field == "" && !a.Normalized.OK {
				t.Fatalf("once Cube has normalised it, the guard refuses it: %+v", a.Normalized)
			}
		})
	}
}

func budgetCalls() []budgetCall {
	dims := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = `"TrackedEvents.` + stringDimensions[i%len(stringDimensions)] + `"`
			if i >= len(stringDimensions) {
				names[i] = fmt.Sprintf(`"TrackedEvents.x%d"`, i)
			}
		}
		return "[" + strings.Join(names, ",") + "]"
	}
	byTime := func(g, key, ranges string, more string) string {
		return fmt.Sprintf(`{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":%q,%q:%s}]%s}`, g, key, ranges, more)
	}
	repeat := func(n int, s string) string { return strings.Repeat(s+",", n-1) + s }
	granular := `"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}]`
	five := `{"dimensions":` + dims(5) + `,"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}],"limit":37500}`
	small := `{"measures":["TrackedEvents.count"],` + granular + `,"limit":1000}`
	day := func(n int) string {
		return time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n-1).Format(time.DateOnly)
	}
	dr := "query.timeDimensions[0].dateRange"
	return []budgetCall{
		// Answer cells.
		{"an export: 50,000 rows of 12 columns", `{"dimensions":` + dims(12) + `,"ungrouped":true,"limit":50000}`, ""},
		{"13 columns", `{"dimensions":` + dims(13) + `,"ungrouped":true,"limit":50000}`, "query"},
		{"the issue's export: 25 columns of 50,000 rows", `{"dimensions":` + dims(25) + `,"ungrouped":true,"limit":50000}`, "query"},
		{"25 columns of 24,000 rows", `{"dimensions":` + dims(25) + `,"limit":24000}`, ""},
		{"25 columns of 24,001 rows", `{"dimensions":` + dims(25) + `,"limit":24001}`, "query"},
		{"no limit: 60 columns of Cube's default rows", `{"dimensions":` + dims(60) + `}`, ""},
		{"no limit: 61 columns", `{"dimensions":` + dims(61) + `}`, "query"},
		{"a granularity is two columns", `{"dimensions":` + dims(10) + `,` + granular + `,"limit":50000}`, ""},
		{"a granularity is two columns, one over", `{"dimensions":` + dims(11) + `,` + granular + `,"limit":50000}`, "query"},
		{"a granular dimension is two columns", `{"dimensions":["TrackedEvents.derivedTstamp.day",` + dims(10)[1:] + `,"limit":50000}`, ""},
		{"a granular dimension is two columns, one over", `{"dimensions":["TrackedEvents.derivedTstamp.day",` + dims(11)[1:] + `,"limit":50000}`, "query"},
		{"12 compared ranges at the budget", byTime("day", "compareDateRange", "["+repeat(12, `"last 7 days"`)+"]", `,"limit":12500`), ""},
		{"12 compared ranges, one row over", byTime("day", "compareDateRange", "["+repeat(12, `"last 7 days"`)+"]", `,"limit":12501`), "query"},
		{"the issue's 12 × 1000 years by second", byTime("second", "compareDateRange", "["+repeat(12, `"from 1000 years ago to now"`)+"]", `,"limit":50000`),
			"query.timeDimensions[0].compareDateRange[0]"},
		{"12 × 1000 years by year", byTime("year", "compareDateRange", "["+repeat(12, `"from 1000 years ago to now"`)+"]", `,"limit":50000`), "query"},
		// Blends.
		{"a blend at the budget", "[" + repeat(2, five) + "]", ""},
		{"a blend over it", "[" + repeat(3, five) + "]", "query"},
		{"a blend of one", "[" + five + "]", ""},
		{"a blend of 10", "[" + repeat(10, small) + "]", ""},
		{"a blend of 11", "[" + repeat(11, small) + "]", "query"},
		{"a blend of 1000", "[" + repeat(1000, small) + "]", "query"},
		{"a blend with one query over", "[" + small + `,{"dimensions":` + dims(13) + `,"limit":50000}]`, "query[1]"},
		{"a blend's bucket rule", "[" + small + "," + byTime("second", "dateRange", `"last 7 days"`, "") + "]", "query[1].timeDimensions[0].dateRange"},
		{"a blend's other rules", "[" + small + `,{"measures":["Sessions.count"],"dimensions":["TrackedEvents.event"]}]`, "query[1]"},
		// Time buckets.
		{"a day of seconds", byTime("second", "dateRange", `["2024-01-01"]`, ""), dr},
		{"50,000 minutes", byTime("minute", "dateRange", `["2024-01-01","2024-02-04T17:19:59"]`, ""), ""},
		{"50,001 minutes", byTime("minute", "dateRange", `["2024-01-01","2024-02-04T17:20:00"]`, ""), dr},
		{"50,000 days", byTime("day", "dateRange", `["1900-01-01","`+day(50000)+`"]`, ""), ""},
		{"50,001 days", byTime("day", "dateRange", `["1900-01-01","`+day(50001)+`"]`, ""), dr},
		{"10,000 years by month", byTime("month", "dateRange", `["0000-01-01","9999-12-31"]`, ""), dr},
		{"10,000 years by year", byTime("year", "dateRange", `["0000-01-01","9999-12-31"]`, ""), ""},
		{"last 7 days by minute", byTime("minute", "dateRange", `"last 7 days"`, ""), ""},
		{"last 7 days by second", byTime("second", "dateRange", `"last 7 days"`, ""), dr},
		{"last 34 days by minute", byTime("minute", "dateRange", `"last 34 days"`, ""), ""},
		{"last 35 days by minute", byTime("minute", "dateRange", `"Last 35 Days"`, ""), dr},
		{"last 50000 days by day", byTime("day", "dateRange", `"last 50000 days"`, ""), ""},
		{"last 50001 days by day", byTime("day", "dateRange", `"last 50001 days"`, ""), dr},
		{"this month by minute", byTime("minute", "dateRange", `"this month"`, ""), ""},
		{"this year by hour", byTime("hour", "dateRange", `"this year"`, ""), ""},
		{"this year by minute", byTime("minute", "dateRange", `"this year"`, ""), dr},
		{"today by minute", byTime("minute", "dateRange", `"today"`, ""), ""},
		{"today by second", byTime("second", "dateRange", `"today"`, ""), dr},
		{"from 7 days ago to now by hour", byTime("hour", "dateRange", `"from 7 days ago to now"`, ""), ""},
		{"from 30 minutes ago to now by second", byTime("second", "dateRange", `"from 30 minutes ago to now"`, ""), ""},
		{"from 1000 years ago to now by day", byTime("day", "dateRange", `"from 1000 years ago to now"`, ""), dr},
		{"from 1000 years ago to now by month", byTime("month", "dateRange", `"from 1000 years ago to now"`, ""), ""},
		{"Cube's today rule before its from rule", byTime("hour", "dateRange", `"from 2 weeks ago to today"`, ""), ""},
		{"what Cube leaves to chrono, by day", byTime("day", "dateRange", `"from monday to now"`, ""), ""},
		{"what Cube leaves to chrono, by hour", byTime("hour", "dateRange", `"from monday to now"`, ""), dr},
		{"no granularity, no buckets", `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","dateRange":"from 1000 years ago to now"}]}`, ""},
		{"compared ranges by hour", byTime("hour", "compareDateRange", `["last 7 days","this year","last year"]`, ""), ""},
		{"compared ranges, one over", byTime("hour", "compareDateRange", `["last 7 days",["2020-01-01","2030-01-01"]]`, ""),
			"query.timeDimensions[0].compareDateRange[1]"},
	}
}

package dashboards

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"productanalytics/shared/request"
)

func TestQueriesAreValidAndDated(t *testing.T) {
	now := time.Date(2026, 11, 26, 23, 30, 0, 0, time.FixedZone("UTC+2", 2*3600))
	qs := Queries(now)
	if len(qs) != len(panels) {
		t.Fatalf("%d queries for %d panels", len(qs), len(panels))
	}
	names := map[string]bool{}
	for _, q := range qs {
		if names[q.Name] {
			t.Errorf("duplicate name %s", q.Name)
		}
		names[q.Name] = true
		if _, err := request.ParseQuery(q.Query); err != nil {
			t.Errorf("%s: the API would refuse it: %v", q.Name, err)
		}
		var parsed struct {
			Measures   []string
			Dimensions []string
			Order      [][2]string
			Filters    []struct {
				Member, Operator string
				Values           []string
			}
			Limit    int
			Timezone string
		}
		json.Unmarshal(q.Query, &parsed)
		cube, _, _ := strings.Cut(parsed.Measures[0], ".")
		f := parsed.Filters[0]
		if f.Member != timeMember[cube] || f.Operator != "inDateRange" || f.Values[0] != "2026-11-19" || f.Values[1] != "2026-11-26" {
			t.Errorf("%s: date filter %+v", q.Name, f)
		}
		if parsed.Limit != 100 || parsed.Timezone != "UTC" {
			t.Errorf("%s: limit %d timezone %q", q.Name, parsed.Limit, parsed.Timezone)
		}
		// A table's rows in one order on every store: the measure, then
		// each dimension to break its ties.
		if len(parsed.Dimensions) > 0 {
			want := [][2]string{{parsed.Measures[0], "desc"}}
			for _, d := range parsed.Dimensions {
				want = append(want, [2]string{d, "asc"})
			}
			if fmt.Sprint(parsed.Order) != fmt.Sprint(want) {
				t.Errorf("%s: order %v, want %v", q.Name, parsed.Order, want)
			}
		} else if parsed.Order != nil {
			t.Errorf("%s: order %v on a query without dimensions", q.Name, parsed.Order)
		}
	}
}

// TestTemplateFilledIsQueriesOver checks that a client filling the
// template's placeholders with the range's first and last day sends exactly
// the queries QueriesOver makes.
func TestTemplateFilledIsQueriesOver(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 10, 0, 0, time.UTC)
	tests := []struct {
		days     int
		from, to string
	}{
		{7, "2026-02-22", "2026-03-01"},
		{30, "2026-01-30", "2026-03-01"},
		{90, "2025-12-01", "2026-03-01"},
	}
	tpl := Template()
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.days), func(t *testing.T) {
			got := QueriesOver(now, tt.days)
			if len(got) != len(tpl) {
				t.Fatalf("%d queries, the template has %d", len(got), len(tpl))
			}
			for i, q := range tpl {
				filled := strings.NewReplacer(FromPlaceholder, tt.from, ToPlaceholder, tt.to).Replace(string(q.Query))
				if q.Name != got[i].Name || filled != string(got[i].Query) {
					t.Errorf("%s filled: %s\nQueriesOver: %s %s", q.Name, filled, got[i].Name, got[i].Query)
				}
				if strings.Count(string(q.Query), FromPlaceholder) != 1 || strings.Count(string(q.Query), ToPlaceholder) != 1 {
					t.Errorf("%s: the template holds each placeholder once only in its date filter: %s", q.Name, q.Query)
				}
			}
		})
	}
	if a, b := Queries(now), QueriesOver(now, 7); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("Queries is not the last seven days")
	}
}

package dashboards

import (
	"encoding/json"
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
			Measures []string
			Filters  []struct {
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
	}
}

package request

import (
	"slices"
	"testing"
)

func TestCheckFunnelMembers(t *testing.T) {
	has := func(name string) bool { return slices.Contains([]string{"install", "sign_up"}, name) }
	for _, c := range []struct {
		name, query, err string
		uses             bool
	}{
		{"shared cubes", `{"measures":["TrackedEvents.count"],"dimensions":["TrackedEvents.pageUrlpath"]}`, "", false},
		{"own funnel", `{"measures":["install.count"],"dimensions":["install.step"],"filters":[{"member":"install.date","operator":"inDateRange","values":["2024-01-01","2024-01-31"]}]}`, "", true},
		{"own funnel by week", `{"measures":["sign_up.count"],"timeDimensions":[{"dimension":"sign_up.date","granularity":"week"}]}`, "", true},
		{"date with a granularity", `{"dimensions":["install.date.day"]}`, "", true},
		{"a funnel it does not have", `{"measures":["checkout.count"]}`, "Cube 'checkout' not found for path 'checkout.count'", true},
		{"a member funnels do not have", `{"measures":["install.count"],"dimensions":["install.sql"]}`, "'sql' not found for path 'install.sql'", true},
		{"in a nested filter", `{"dimensions":["TrackedEvents.pageUrlpath"],"filters":[{"and":[{"or":[{"member":"other.step","operator":"set"}]}]}]}`, "Cube 'other' not found for path 'other.step'", true},
		{"in the order", `{"dimensions":["TrackedEvents.pageUrlpath"],"order":[["other.count","asc"]]}`, "Cube 'other' not found for path 'other.count'", true},
		{"in a segment", `{"segments":["other.users"],"dimensions":["TrackedEvents.pageUrlpath"]}`, "Cube 'other' not found for path 'other.users'", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := ParseQuery([]byte(c.query))
			if err != nil {
				t.Fatal(err)
			}
			call := Call{ProjectID: 1, Queries: []*Query{q}}
			if call.UsesFunnels() != c.uses {
				t.Errorf("UsesFunnels %v, want %v", !c.uses, c.uses)
			}
			err = call.CheckFunnelMembers(has)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.err != "" && (err == nil || err.Error() != c.err):
				t.Fatalf("got %v, want %q", err, c.err)
			}
		})
	}
}

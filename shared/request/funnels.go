package request

import (
	"fmt"
	"slices"
	"strings"
)

// FunnelMembers are the members of a funnel's cube (shared/funnels).
var FunnelMembers = []string{"count", "step", "date"}

// isFunnelCube reports whether a cube name is a funnel's: funnel names are
// lower case ([a-z][a-z0-9_]*), the shared cubes' start with a capital.
func isFunnelCube(cube string) bool { return cube != "" && cube[0] >= 'a' && cube[0] <= 'z' }

// CheckFunnelMembers refuses a member of a funnel cube the project does not
// have (has reports the project's funnels), or that is not one of a
// funnel's members, with the words Cube uses for a cube or member it does
// not know: the same 400 as any unknown member, whether or not another
// project has such a funnel.
func (c Call) CheckFunnelMembers(has func(funnel string) bool) error {
	for _, q := range c.Queries {
		for _, name := range q.memberNames() {
			cube, rest, _ := strings.Cut(name, ".")
			if !isFunnelCube(cube) {
				continue
			}
			if !has(cube) {
				return &Error{Problem: fmt.Sprintf("Cube '%s' not found for path '%s'", cube, name)}
			}
			member, _, _ := strings.Cut(rest, ".")
			if !slices.Contains(FunnelMembers, member) {
				return &Error{Problem: fmt.Sprintf("'%s' not found for path '%s'", member, name)}
			}
		}
	}
	return nil
}

// UsesFunnels reports whether any query of the call names a funnel cube.
func (c Call) UsesFunnels() bool {
	for _, q := range c.Queries {
		for _, name := range q.memberNames() {
			if cube, _, _ := strings.Cut(name, "."); isFunnelCube(cube) {
				return true
			}
		}
	}
	return false
}

// memberNames lists every member name the query uses.
func (q *Query) memberNames() []string {
	var names []string
	names = append(names, q.Measures...)
	names = append(names, q.Dimensions...)
	names = append(names, q.Segments...)
	for _, td := range q.TimeDimensions {
		names = append(names, td.Dimension)
	}
	var walk func([]Filter)
	walk = func(fs []Filter) {
		for _, f := range fs {
			if f.Member != "" {
				names = append(names, f.Member)
			}
			walk(f.Or)
			walk(f.And)
		}
	}
	walk(q.Filters)
	for _, o := range q.Order {
		names = append(names, o.Member)
	}
	return names
}

package request

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// maxFilterDepth bounds nested and/or filters; real dashboards use one or two.
const maxFilterDepth = 16

// cubeQuery holds the parts of a Cube query that are checked. Every part stays
// raw so that a wrong type is reported with the part's name.
type cubeQuery struct {
	Measures       json.RawMessage `json:"measures"`
	Dimensions     json.RawMessage `json:"dimensions"`
	Segments       json.RawMessage `json:"segments"`
	TimeDimensions json.RawMessage `json:"timeDimensions"`
	Filters        json.RawMessage `json:"filters"`
	Order          json.RawMessage `json:"order"`
	Limit          json.RawMessage `json:"limit"`
	Offset         json.RawMessage `json:"offset"`
}

// memberUse is one member named by a query, with where it was named.
type memberUse struct {
	name  string
	where string
}

// ValidateQuery checks a Cube query object: member names are well formed,
// the limit is within Cube's range, and a query that measures a cube uses
// only that cube's members, the rule GitLab documents for TrackedEvents and
// Sessions, applied to every cube.
func ValidateQuery(raw json.RawMessage) error {
	var q cubeQuery
	if err := json.Unmarshal(raw, &q); err != nil {
		return badRequest("query must be a JSON object (a Cube query): %s", jsonProblem(err))
	}
	measures, err := memberList(q.Measures, "query.measures", false)
	if err != nil {
		return err
	}
	var uses []memberUse
	dims, err := memberList(q.Dimensions, "query.dimensions", true)
	if err != nil {
		return err
	}
	uses = appendUses(uses, dims, "dimensions")
	segs, err := memberList(q.Segments, "query.segments", false)
	if err != nil {
		return err
	}
	uses = appendUses(uses, segs, "segments")
	tds, err := timeDimensions(q.TimeDimensions)
	if err != nil {
		return err
	}
	uses = appendUses(uses, tds, "timeDimensions")
	if uses, err = filters(uses, q.Filters, "query.filters", 0); err != nil {
		return err
	}
	if err := order(q.Order); err != nil {
		return err
	}
	if err := count(q.Limit, "query.limit", MaxLimit); err != nil {
		return err
	}
	if err := count(q.Offset, "query.offset", -1); err != nil {
		return err
	}
	return sameCube(measures, uses)
}

func appendUses(uses []memberUse, names []string, where string) []memberUse {
	for _, n := range names {
		uses = append(uses, memberUse{name: n, where: where})
	}
	return uses
}

// sameCube applies the one-cube rule to a query's measures and other members.
func sameCube(measures []string, uses []memberUse) error {
	if len(measures) == 0 || len(uses) == 0 {
		return nil
	}
	var measured []string
	for _, m := range measures {
		c := cubeOf(m)
		if !contains(measured, c) {
			measured = append(measured, c)
		}
	}
	if len(measured) > 1 {
		sort.Strings(measured)
		return badRequest("query measures several cubes (%s), so it cannot also use %s member %s: send one query per cube",
			strings.Join(measured, ", "), uses[0].where, uses[0].name)
	}
	for _, u := range uses {
		if cubeOf(u.name) != measured[0] {
			return badRequest("query measures %s, so its %s must be %s members: %s is not",
				measured[0], u.where, measured[0], u.name)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func cubeOf(member string) string {
	if i := strings.IndexByte(member, '.'); i >= 0 {
		return member[:i]
	}
	return member
}

// memberList decodes an array of member names. withGranularity allows the
// Cube.member.granularity form Cube accepts among dimensions.
func memberList(raw json.RawMessage, field string, withGranularity bool) ([]string, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, badRequest("%s must be an array of member names", field)
	}
	for i, n := range names {
		if !validMember(n, withGranularity) {
			return nil, badMember(field, i, n)
		}
	}
	return names, nil
}

func badMember(field string, i int, name string) error {
	return badRequest(`%s[%d] is not a member name of the form "Cube.member": %q`, field, i, truncate(name, 100))
}

func timeDimensions(raw json.RawMessage) ([]string, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var tds []struct {
		Dimension *string `json:"dimension"`
	}
	if err := json.Unmarshal(raw, &tds); err != nil {
		return nil, badRequest("query.timeDimensions must be an array of objects with a dimension")
	}
	names := make([]string, 0, len(tds))
	for i, td := range tds {
		if td.Dimension == nil {
			return nil, badRequest("query.timeDimensions[%d].dimension is missing", i)
		}
		if !validMember(*td.Dimension, false) {
			return nil, badMember("query.timeDimensions", i, *td.Dimension)
		}
		names = append(names, *td.Dimension)
	}
	return names, nil
}

// filters walks a filter list, nested and/or groups included, collecting the
// members it names.
func filters(uses []memberUse, raw json.RawMessage, field string, depth int) ([]memberUse, error) {
	if isAbsent(raw) {
		return uses, nil
	}
	if depth > maxFilterDepth {
		return nil, badRequest("%s nests and/or groups deeper than %d levels", field, maxFilterDepth)
	}
	var list []struct {
		Member    *string         `json:"member"`
		Dimension *string         `json:"dimension"`
		Or        json.RawMessage `json:"or"`
		And       json.RawMessage `json:"and"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest("%s must be an array of filter objects", field)
	}
	for i, f := range list {
		at := field + "[" + strconv.Itoa(i) + "]"
		var err error
		switch {
		case !isAbsent(f.Or):
			uses, err = filters(uses, f.Or, at+".or", depth+1)
		case !isAbsent(f.And):
			uses, err = filters(uses, f.And, at+".and", depth+1)
		case f.Member != nil || f.Dimension != nil:
			name := f.Member
			if name == nil {
				name = f.Dimension
			}
			if !validMember(*name, false) {
				return nil, badRequest(`%s.member is not a member name of the form "Cube.member": %q`, at, truncate(*name, 100))
			}
			uses = append(uses, memberUse{name: *name, where: "filters"})
		default:
			return nil, badRequest("%s needs a member, or an and/or list", at)
		}
		if err != nil {
			return nil, err
		}
	}
	return uses, nil
}

// order accepts Cube's two forms: {"Member": "asc"} and [["Member", "desc"]].
func order(raw json.RawMessage) error {
	if isAbsent(raw) {
		return nil
	}
	if raw[0] == '{' {
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return badRequest(`query.order must map member names to "asc" or "desc"`)
		}
		for name, dir := range m {
			if err := orderItem(name, dir); err != nil {
				return err
			}
		}
		return nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return badRequest(`query.order must be an object or an array of ["Member", "asc"|"desc"] pairs`)
	}
	for _, p := range pairs {
		if len(p) != 2 {
			return badRequest(`query.order must be an object or an array of ["Member", "asc"|"desc"] pairs`)
		}
		if err := orderItem(p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

func orderItem(name, dir string) error {
	if !validMember(name, true) {
		return badRequest(`query.order names %q, which is not a member name of the form "Cube.member"`, truncate(name, 100))
	}
	if dir != "asc" && dir != "desc" {
		return badRequest(`query.order for %s must be "asc" or "desc"`, name)
	}
	return nil
}

// count checks a non-negative whole number no greater than max (max < 0: no bound).
func count(raw json.RawMessage, field string, max int) error {
	if isAbsent(raw) {
		return nil
	}
	var n json.Number
	if raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
		return badRequest("%s must be a whole number", field)
	}
	v, err := n.Int64()
	if err != nil || v < 0 {
		return badRequest("%s must be a whole number of 0 or more", field)
	}
	if max >= 0 && v > int64(max) {
		return badRequest("%s is %d, above the maximum of %d rows", field, v, max)
	}
	return nil
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// validMember reports whether s is Cube.member, or Cube.member.granularity
// when withGranularity is set. Cube's own pattern is [A-Za-z0-9_]+ per part.
func validMember(s string, withGranularity bool) bool {
	parts, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if i == start {
				return false
			}
			parts++
			start = i + 1
			continue
		}
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return parts == 2 || withGranularity && parts == 3
}

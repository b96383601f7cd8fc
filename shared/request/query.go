package request

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Query is a Cube query that passed every check: each field is one Cube
// documents, each string is in its field's grammar (grammar.go), each list
// is bounded. It is sent to Cube as its own encoding (AppendJSON), never as
// the caller's bytes, so nothing the checks did not see can reach Cube.
type Query struct {
	Measures       []string
	Dimensions     []string // Cube.member, or Cube.member.granularity
	Segments       []string
	TimeDimensions []TimeDimension
	Filters        []Filter
	// Order is nil when the caller left it out (Cube then orders by its
	// own rule), and empty when the caller asked for no order.
	Order          []OrderBy
	Limit, Offset  *int64
	Timezone       string
	Total          *bool
	Ungrouped      *bool
	RenewQuery     *bool
	ResponseFormat string
}

// TimeDimension is one of query.timeDimensions.
type TimeDimension struct {
	Dimension   string
	Granularity string
	// DateRange is nil, one relative range ("last 7 days"), or one or two
	// dates.
	DateRange        DateRange
	CompareDateRange []DateRange
}

// DateRange is a relative range (one string, encoded as a string), or one
// or two dates (encoded as an array).
type DateRange struct {
	Relative string
	Dates    []string
}

func (d DateRange) isZero() bool { return d.Relative == "" && d.Dates == nil }

// Filter is a member filter, or an and/or group of filters.
type Filter struct {
	Member   string
	Operator string
	// Values are JSON strings, numbers or booleans, each re-encoded.
	Values []json.RawMessage
	// Or or And, when set, make this a group; the fields above are then
	// empty.
	Or, And []Filter
}

// OrderBy is one member of query.order.
type OrderBy struct {
	Member string
	Desc   bool
}

// ParseQuery checks a Cube query object and returns it. An error is an
// *Error naming the first field that is wrong.
func ParseQuery(data []byte) (*Query, error) {
	r := newReader(data)
	q, err := r.query("query")
	if err != nil {
		return nil, err
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return q, nil
}

// queryFields are the fields of a Cube query, as Cube 0.33's query schema
// lists them.
const queryFields = "measures, dimensions, segments, timeDimensions, filters, order, limit, offset, timezone, total, ungrouped, renewQuery, responseFormat"

// query reads a query object at field.
func (r *reader) query(field string) (*Query, error) {
	q := &Query{}
	filters := 0
	err := r.object(field, "a JSON object (a Cube query)", func(key string) error {
		at := join(field, key)
		if null, err := r.null(); null || err != nil {
			return err // null is as good as absent
		}
		var err error
		switch key {
		case "measures":
			q.Measures, err = r.members(at, false)
		case "dimensions":
			q.Dimensions, err = r.members(at, true)
		case "segments":
			q.Segments, err = r.members(at, false)
		case "timeDimensions":
			err = r.array(at, "an array of time dimensions", MaxTimeDimensions, func(i int) error {
				td, err := r.timeDimension(at + "[" + strconv.Itoa(i) + "]")
				q.TimeDimensions = append(q.TimeDimensions, td)
				return err
			})
		case "filters":
			q.Filters, err = r.filters(at, 1, &filters)
		case "order":
			q.Order, err = r.order(at)
		case "limit":
			q.Limit, err = ptr(r.integer(at, 1, MaxLimit))
		case "offset":
			q.Offset, err = ptr(r.integer(at, 0, MaxOffset))
		case "timezone":
			q.Timezone, err = r.str(at)
			if err == nil && !validTimezone(q.Timezone) {
				err = &Error{Field: at, Problem: fmt.Sprintf("is not a time zone name such as UTC or America/Los_Angeles: %q", truncate(q.Timezone, 64))}
			}
		case "total":
			q.Total, err = ptr(r.boolean(at))
		case "ungrouped":
			q.Ungrouped, err = ptr(r.boolean(at))
		case "renewQuery":
			q.RenewQuery, err = ptr(r.boolean(at))
		case "responseFormat":
			q.ResponseFormat, err = r.str(at)
			if err == nil && q.ResponseFormat != "default" && q.ResponseFormat != "compact" {
				err = &Error{Field: at, Problem: `must be "default" or "compact"`}
			}
		default:
			err = &Error{Field: at, Problem: "is not a field of a Cube query (" + queryFields + ")"}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return q, q.check(field)
}

func ptr[T any](v T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// members reads a list of member names.
func (r *reader) members(field string, withGranularity bool) ([]string, error) {
	names := []string{}
	err := r.array(field, "an array of member names", MaxMembers, func(i int) error {
		at := field + "[" + strconv.Itoa(i) + "]"
		s, err := r.str(at)
		if err != nil {
			return err
		}
		if !validMember(s, withGranularity) {
			return badMember(at, s)
		}
		names = append(names, s)
		return nil
	})
	return names, err
}

func badMember(field, name string) error {
	return &Error{Field: field, Problem: fmt.Sprintf(`is not a member name of the form "Cube.member": %q`, truncate(name, 100))}
}

func (r *reader) timeDimension(field string) (TimeDimension, error) {
	var td TimeDimension
	err := r.object(field, "an object with a dimension", func(key string) error {
		at := join(field, key)
		if null, err := r.null(); null || err != nil {
			return err
		}
		var err error
		switch key {
		case "dimension":
			if td.Dimension, err = r.str(at); err == nil && !validMember(td.Dimension, false) {
				err = badMember(at, td.Dimension)
			}
		case "granularity":
			if td.Granularity, err = r.str(at); err == nil && !slices.Contains(granularities, td.Granularity) {
				err = &Error{Field: at, Problem: "must be one of " + strings.Join(granularities, ", ")}
			}
		case "dateRange":
			td.DateRange, err = r.dateRange(at)
		case "compareDateRange":
			err = r.array(at, "an array of date ranges", MaxCompareDateRanges, func(i int) error {
				d, err := r.dateRange(at + "[" + strconv.Itoa(i) + "]")
				td.CompareDateRange = append(td.CompareDateRange, d)
				return err
			})
			if err == nil && len(td.CompareDateRange) == 0 {
				err = &Error{Field: at, Problem: "needs at least one date range"}
			}
		default:
			err = &Error{Field: at, Problem: "is not a field of a time dimension (dimension, granularity, dateRange, compareDateRange)"}
		}
		return err
	})
	switch {
	case err != nil:
		return td, err
	case td.Dimension == "":
		return td, &Error{Field: field + ".dimension", Problem: "is missing"}
	case !td.DateRange.isZero() && td.CompareDateRange != nil:
		return td, &Error{Field: field, Problem: "has both dateRange and compareDateRange: give one"}
	}
	return td, nil
}

// dateRange reads a relative range or an array of one or two dates.
func (r *reader) dateRange(field string) (DateRange, error) {
	tok, err := r.peek()
	if err != nil {
		return DateRange{}, err
	}
	if s, ok := tok.(string); ok {
		r.has = false
		if !validRelativeDate(s) {
			return DateRange{}, &Error{Field: field, Problem: fmt.Sprintf(`must be one or two dates, or a relative range such as "last 7 days": %q`, truncate(s, 64))}
		}
		return DateRange{Relative: s}, nil
	}
	d := DateRange{Dates: []string{}}
	err = r.array(field, `one or two dates, or a relative range such as "last 7 days"`, 2, func(i int) error {
		at := field + "[" + strconv.Itoa(i) + "]"
		s, err := r.str(at)
		if err == nil && !validDate(s) {
			err = badDate(at, s)
		}
		d.Dates = append(d.Dates, s)
		return err
	})
	if err == nil && len(d.Dates) == 0 {
		err = &Error{Field: field, Problem: "needs one or two dates"}
	}
	return d, err
}

func badDate(field, s string) error {
	return &Error{Field: field, Problem: fmt.Sprintf("is not a date such as 2024-01-31 or 2024-01-31T23:59:59: %q", truncate(s, 64))}
}

// filters reads a filter list at the given depth; count is the number of
// filters read so far in the whole query.
func (r *reader) filters(field string, depth int, count *int) ([]Filter, error) {
	if depth > MaxFilterDepth {
		return nil, &Error{Field: field, Problem: fmt.Sprintf("nests and/or groups deeper than %d levels", MaxFilterDepth)}
	}
	list := []Filter{}
	err := r.array(field, "an array of filters", MaxFilters, func(i int) error {
		if *count++; *count > MaxFilters {
			return &Error{Field: field, Problem: fmt.Sprintf("brings the query's filters past %d", MaxFilters)}
		}
		f, err := r.filter(field+"["+strconv.Itoa(i)+"]", depth, count)
		list = append(list, f)
		return err
	})
	return list, err
}

func (r *reader) filter(field string, depth int, count *int) (Filter, error) {
	var f Filter
	var member, dimension string
	hasValues := false
	err := r.object(field, "a filter object", func(key string) error {
		at := join(field, key)
		if null, err := r.null(); null || err != nil {
			return err
		}
		var err error
		switch key {
		case "member":
			member, err = r.memberField(at)
		case "dimension":
			dimension, err = r.memberField(at)
		case "operator":
			if f.Operator, err = r.str(at); err == nil && !slices.Contains(operators, f.Operator) {
				err = &Error{Field: at, Problem: fmt.Sprintf("%q is not one of Cube's operators (%s)", truncate(f.Operator, 32), strings.Join(operators, ", "))}
			}
		case "values":
			hasValues = true
			err = r.array(at, "an array of values", MaxValues, func(i int) error {
				v, err := r.value(at + "[" + strconv.Itoa(i) + "]")
				f.Values = append(f.Values, v)
				return err
			})
		case "or":
			f.Or, err = r.filters(at, depth+1, count)
		case "and":
			f.And, err = r.filters(at, depth+1, count)
		default:
			err = &Error{Field: at, Problem: "is not a field of a filter (member, operator, values; or an and/or list)"}
		}
		return err
	})
	if err != nil {
		return f, err
	}
	if f.Or != nil || f.And != nil {
		switch {
		case f.Or != nil && f.And != nil:
			return f, &Error{Field: field, Problem: "has both or and and: nest one in the other"}
		case member != "" || dimension != "" || f.Operator != "" || hasValues:
			return f, &Error{Field: field, Problem: "is an and/or group, which takes nothing else"}
		case len(f.Or)+len(f.And) == 0:
			return f, &Error{Field: field, Problem: "is an empty and/or group"}
		}
		return f, nil
	}
	switch {
	case member != "" && dimension != "":
		return f, &Error{Field: field, Problem: "has both member and dimension: give one"}
	case member == "" && dimension == "":
		return f, &Error{Field: field, Problem: "needs a member, or an and/or list"}
	case f.Operator == "":
		return f, &Error{Field: field + ".operator", Problem: "is missing"}
	}
	f.Member = member + dimension
	return f, checkValues(field, f)
}

func (r *reader) memberField(field string) (string, error) {
	s, err := r.str(field)
	if err == nil && !validMember(s, false) {
		err = badMember(field, s)
	}
	return s, err
}

// value reads one filter value: a string, a number or a boolean.
func (r *reader) value(field string) (json.RawMessage, error) {
	tok, err := r.token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case string:
		if !validValue(v) {
			return nil, &Error{Field: field, Problem: fmt.Sprintf("must be text of at most %d bytes without control characters", MaxValueLength)}
		}
		return appendString(make([]byte, 0, len(v)+2), v), nil
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return nil, &Error{Field: field, Problem: "is not a number Cube can read"}
		}
		// As JavaScript writes it, which is what Cube compares.
		return json.Marshal(f)
	case bool:
		return json.Marshal(v)
	}
	return nil, wrongType(field, "a string, a number or a boolean")
}

// checkValues checks a member filter's values against its operator.
func checkValues(field string, f Filter) error {
	n, dates := valuesOf(f.Operator)
	at := field + ".values"
	switch {
	case n < 0 && len(f.Values) > 0:
		return &Error{Field: at, Problem: fmt.Sprintf("must be left out: %s takes no values", f.Operator)}
	case n < 0:
		return nil
	case n == 0 && len(f.Values) == 0:
		return &Error{Field: at, Problem: fmt.Sprintf("is missing: %s needs at least one value", f.Operator)}
	case n > 0 && len(f.Values) != n:
		return &Error{Field: at, Problem: fmt.Sprintf("must be %d date(s) for %s", n, f.Operator)}
	}
	if dates {
		for i, v := range f.Values {
			var s string
			if json.Unmarshal(v, &s) != nil || !validDate(s) {
				return badDate(at+"["+strconv.Itoa(i)+"]", string(v))
			}
		}
	}
	return nil
}

// order reads Cube's two forms of query.order: {"Member": "asc"} and
// [["Member", "desc"]].
func (r *reader) order(field string) ([]OrderBy, error) {
	tok, err := r.peek()
	if err != nil {
		return nil, err
	}
	list := []OrderBy{}
	add := func(at, member, dir string) error {
		if !validMember(member, false) {
			return badMember(at, member)
		}
		if dir != "asc" && dir != "desc" {
			return &Error{Field: at, Problem: fmt.Sprintf(`orders %s %q: it must be "asc" or "desc"`, member, truncate(dir, 16))}
		}
		if len(list) == MaxOrder {
			return &Error{Field: field, Problem: fmt.Sprintf("has more than %d members", MaxOrder)}
		}
		list = append(list, OrderBy{Member: member, Desc: dir == "desc"})
		return nil
	}
	if tok == json.Delim('{') {
		err := r.object(field, "an object", func(key string) error {
			dir, err := r.str(join(field, key))
			if err != nil {
				return err
			}
			return add(join(field, key), key, dir)
		})
		return list, err
	}
	err = r.array(field, `an object or an array of ["Member", "asc"|"desc"] pairs`, MaxOrder, func(i int) error {
		at := field + "[" + strconv.Itoa(i) + "]"
		var pair []string
		err := r.array(at, `a ["Member", "asc"|"desc"] pair`, 2, func(j int) error {
			s, err := r.str(at + "[" + strconv.Itoa(j) + "]")
			pair = append(pair, s)
			return err
		})
		if err != nil {
			return err
		}
		if len(pair) != 2 {
			return wrongType(at, `a ["Member", "asc"|"desc"] pair`)
		}
		return add(at, pair[0], pair[1])
	})
	return list, err
}

// check applies the rules that span fields: what Cube needs to have a
// query at all, one compareDateRange, GitLab's one-cube rule, and the cost
// budget (budget.go): time buckets per date range, answer cells.
func (q *Query) check(field string) error {
	granular := false
	compared := 0
	for _, td := range q.TimeDimensions {
		granular = granular || td.Granularity != ""
		if td.CompareDateRange != nil {
			compared++
		}
	}
	if len(q.Measures) == 0 && len(q.Dimensions) == 0 && !granular {
		return &Error{Field: field, Problem: "needs measures, dimensions or a time dimension with a granularity"}
	}
	if compared > 1 {
		return &Error{Field: field + ".timeDimensions", Problem: "may give compareDateRange for one time dimension only"}
	}
	if err := q.oneCube(field); err != nil {
		return err
	}
	for i, td := range q.TimeDimensions {
		if err := td.checkBuckets(field + ".timeDimensions[" + strconv.Itoa(i) + "]"); err != nil {
			return err
		}
	}
	return q.checkCells(field)
}

// oneCube applies GitLab's documented rule, to every cube: a query that
// measures TrackedEvents uses TrackedEvents members only in its dimensions,
// time dimensions, segments and filters; likewise for Sessions.
func (q *Query) oneCube(field string) error {
	var measured []string
	for _, m := range q.Measures {
		if c := cubeOf(m); !slices.Contains(measured, c) {
			measured = append(measured, c)
		}
	}
	if len(measured) == 0 {
		return nil
	}
	bad := func(where, name string) error {
		if len(measured) > 1 {
			slices.Sort(measured)
			return &Error{Field: field, Problem: fmt.Sprintf("measures several cubes (%s), so it cannot also use %s member %s: send one query per cube",
				strings.Join(measured, ", "), where, name)}
		}
		return &Error{Field: field, Problem: fmt.Sprintf("measures %s, so its %s must be %s members: %s is not", measured[0], where, measured[0], name)}
	}
	for _, list := range []struct {
		where string
		names []string
	}{{"dimensions", q.Dimensions}, {"segments", q.Segments}} {
		for _, n := range list.names {
			if len(measured) > 1 || cubeOf(n) != measured[0] {
				return bad(list.where, n)
			}
		}
	}
	for _, td := range q.TimeDimensions {
		if len(measured) > 1 || cubeOf(td.Dimension) != measured[0] {
			return bad("timeDimensions", td.Dimension)
		}
	}
	var walk func([]Filter) error
	walk = func(fs []Filter) error {
		for _, f := range fs {
			if f.Member != "" && (len(measured) > 1 || cubeOf(f.Member) != measured[0]) {
				return bad("filters", f.Member)
			}
			if err := walk(f.Or); err != nil {
				return err
			}
			if err := walk(f.And); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(q.Filters)
}

func cubeOf(member string) string {
	c, _, _ := strings.Cut(member, ".")
	return c
}

// AppendJSON appends the query's JSON encoding, the one sent to Cube.
func (q *Query) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	strs := func(k string, list []string) {
		if list != nil {
			key(k)
			b = appendStrings(b, list)
		}
	}
	strs("measures", q.Measures)
	strs("dimensions", q.Dimensions)
	strs("segments", q.Segments)
	if q.TimeDimensions != nil {
		key("timeDimensions")
		b = append(b, '[')
		for i, td := range q.TimeDimensions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"dimension":`...)
			b = appendString(b, td.Dimension)
			if td.Granularity != "" {
				b = append(b, `,"granularity":`...)
				b = appendString(b, td.Granularity)
			}
			if !td.DateRange.isZero() {
				b = append(b, `,"dateRange":`...)
				b = td.DateRange.appendJSON(b)
			}
			if td.CompareDateRange != nil {
				b = append(b, `,"compareDateRange":[`...)
				for j, d := range td.CompareDateRange {
					if j > 0 {
						b = append(b, ',')
					}
					b = d.appendJSON(b)
				}
				b = append(b, ']')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if q.Filters != nil {
		key("filters")
		b = appendFilters(b, q.Filters)
	}
	if q.Order != nil {
		key("order")
		b = append(b, '[')
		for i, o := range q.Order {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendString(b, o.Member)
			if o.Desc {
				b = append(b, `,"desc"]`...)
			} else {
				b = append(b, `,"asc"]`...)
			}
		}
		b = append(b, ']')
	}
	if q.Limit != nil {
		key("limit")
		b = strconv.AppendInt(b, *q.Limit, 10)
	}
	if q.Offset != nil {
		key("offset")
		b = strconv.AppendInt(b, *q.Offset, 10)
	}
	if q.Timezone != "" {
		key("timezone")
		b = appendString(b, q.Timezone)
	}
	for _, f := range []struct {
		k string
		v *bool
	}{{"total", q.Total}, {"ungrouped", q.Ungrouped}, {"renewQuery", q.RenewQuery}} {
		if f.v != nil {
			key(f.k)
			b = strconv.AppendBool(b, *f.v)
		}
	}
	if q.ResponseFormat != "" {
		key("responseFormat")
		b = appendString(b, q.ResponseFormat)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (q *Query) MarshalJSON() ([]byte, error) { return q.AppendJSON(nil), nil }

func (d DateRange) appendJSON(b []byte) []byte {
	if d.Relative != "" {
		return appendString(b, d.Relative)
	}
	return appendStrings(b, d.Dates)
}

func appendFilters(b []byte, fs []Filter) []byte {
	b = append(b, '[')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		switch {
		case f.Or != nil:
			b = append(b, `{"or":`...)
			b = appendFilters(b, f.Or)
		case f.And != nil:
			b = append(b, `{"and":`...)
			b = appendFilters(b, f.And)
		default:
			b = append(b, `{"member":`...)
			b = appendString(b, f.Member)
			b = append(b, `,"operator":`...)
			b = appendString(b, f.Operator)
			if f.Values != nil {
				b = append(b, `,"values":[`...)
				for j, v := range f.Values {
					if j > 0 {
						b = append(b, ',')
					}
					b = append(b, v...)
				}
				b = append(b, ']')
			}
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendStrings appends a JSON array of strings. Names and dates are
// ASCII, but any string is quoted as JSON requires.
func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string: quote, backslash and control
// characters escaped, the rest as it is (the scanner has already made any
// invalid UTF-8 into U+FFFD).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

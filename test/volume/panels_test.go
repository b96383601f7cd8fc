package volume

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The dashboards' figures computed in Go from the generated events, without
// Cube or a database: the definitions are the comments of cube/model/*.js
// (and cube/README.md, "Data model definitions"), written down again here
// so that an optimisation of the model that changes a figure shows.

// record is one row of a cube: an event of TrackedEvents, or a session of
// Sessions and ReturningUsers.
type record struct {
	at   time.Time // the cube's time: derived_tstamp, or the session's start
	kind string    // event (TrackedEvents only)
	user string    // domain_userid
	// Sessions only.
	sessionIdx int
	durationMs int64
	// Optional columns: nil is NULL.
	pageURL, pagePath, agentName, agentVersion *string
}

// eventRecords are TrackedEvents' rows: one per event.
func eventRecords(evs []event) []record {
	out := make([]record, len(evs))
	for i, e := range evs {
		out[i] = record{at: e.at, kind: e.kind, user: e.user, pageURL: e.pageURL, pagePath: e.pagePath,
			agentName: e.agentName, agentVersion: e.agentVersion}
	}
	return out
}

// sessionRecords are Sessions' rows: one per domain_sessionid, over the
// project's whole history. A session starts at its first derived_tstamp
// and ends at its last; its user, index and browser are the min() of its
// events' values (NULLs left out, NULL when all are).
func sessionRecords(evs []event) []record {
	type agg struct {
		start, end time.Time
		r          record
	}
	byID := map[string]*agg{}
	var order []string
	for _, e := range evs {
		a, ok := byID[e.session]
		if !ok {
			a = &agg{start: e.at, end: e.at, r: record{user: e.user, sessionIdx: e.sessionIdx, agentName: e.agentName, agentVersion: e.agentVersion}}
			byID[e.session] = a
			order = append(order, e.session)
			continue
		}
		if e.at.Before(a.start) {
			a.start = e.at
		}
		if e.at.After(a.end) {
			a.end = e.at
		}
		a.r.user = min(a.r.user, e.user)
		a.r.sessionIdx = min(a.r.sessionIdx, e.sessionIdx)
		a.r.agentName = minText(a.r.agentName, e.agentName)
		a.r.agentVersion = minText(a.r.agentVersion, e.agentVersion)
	}
	out := make([]record, 0, len(order))
	for _, id := range order {
		a := byID[id]
		a.r.at = a.start
		a.r.durationMs = a.end.Sub(a.start).Milliseconds()
		out = append(out, a.r)
	}
	return out
}

// minText is SQL's min() of two values: NULL left out.
func minText(a, b *string) *string {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case *b < *a:
		return b
	}
	return a
}

// cubeDef is what the independent answer knows of a cube: its rows, its
// time member, its dimensions and its measures.
type cubeDef struct {
	rows       func([]event) []record
	times      []string
	dimensions map[string]func(record) *string
	measures   map[string]func([]record) *float64
}

func text(s string) *string { return &s }

func figure(f float64) *float64 { return &f }

var cubes = map[string]cubeDef{
	"TrackedEvents": {
		rows:  eventRecords,
		times: []string{"derivedTstamp", "utcTime"},
		dimensions: map[string]func(record) *string{
			"event":        func(r record) *string { return text(r.kind) },
			"pageUrl":      func(r record) *string { return r.pageURL },
			"pageUrlpath":  func(r record) *string { return r.pagePath },
			"docPath":      func(r record) *string { return r.pagePath },
			"agentName":    func(r record) *string { return r.agentName },
			"agentVersion": func(r record) *string { return r.agentVersion },
		},
		measures: map[string]func([]record) *float64{
			"count": func(rs []record) *float64 { return figure(float64(len(rs))) },
			"pageViewsCount": func(rs []record) *float64 {
				return figure(float64(countIf(rs, func(r record) bool { return r.kind == "page_view" })))
			},
			"uniqueUsersCount": func(rs []record) *float64 { return figure(float64(len(users(rs, nil)))) },
		},
	},
	"Sessions": {
		rows:  sessionRecords,
		times: []string{"startAt"},
		dimensions: map[string]func(record) *string{
			"agentName":    func(r record) *string { return r.agentName },
			"agentVersion": func(r record) *string { return r.agentVersion },
			"userId":       func(r record) *string { return text(r.user) },
		},
		measures: map[string]func([]record) *float64{
			"count":            func(rs []record) *float64 { return figure(float64(len(rs))) },
			"usersCount":       func(rs []record) *float64 { return figure(float64(len(users(rs, nil)))) },
			"uniqueUsersCount": func(rs []record) *float64 { return figure(float64(len(users(rs, nil)))) },
			// avg(duration_ms / 60000.0); NULL over no session.
			"averageDurationMinutes": func(rs []record) *float64 {
				if len(rs) == 0 {
					return nil
				}
				var sum float64
				for _, r := range rs {
					sum += float64(r.durationMs) / 60000.0
				}
				return figure(sum / float64(len(rs)))
			},
			// sessions / distinct users.
			"averagePerUser": func(rs []record) *float64 {
				return ratio(1, float64(len(rs)), float64(len(users(rs, nil))))
			},
			// 100 * distinct users with a session of index > 1 / distinct users.
			"repeatPercent": func(rs []record) *float64 {
				returning := users(rs, func(r record) bool { return r.sessionIdx > 1 })
				return ratio(100, float64(len(returning)), float64(len(users(rs, nil))))
			},
		},
	},
	"ReturningUsers": {
		rows:  sessionRecords,
		times: []string{"first_timestamp"},
		measures: map[string]func([]record) *float64{
			"allSessionsCount": func(rs []record) *float64 { return figure(float64(len(rs))) },
			// 100 * sessions with index > 1 / sessions.
			"returningUserPercentage": func(rs []record) *float64 {
				return ratio(100, float64(countIf(rs, func(r record) bool { return r.sessionIdx > 1 })), float64(len(rs)))
			},
		},
	},
}

func countIf(rs []record, keep func(record) bool) int {
	n := 0
	for _, r := range rs {
		if keep(r) {
			n++
		}
	}
	return n
}

// users are the distinct users of the records keep accepts (all, if nil).
func users(rs []record, keep func(record) bool) map[string]bool {
	out := map[string]bool{}
	for _, r := range rs {
		if keep == nil || keep(r) {
			out[r.user] = true
		}
	}
	return out
}

// ratio is scale * a / b, NULL when b is 0 (SQL's NULLIF(b, 0)).
func ratio(scale, a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	return figure(scale * a / b)
}

// cubeQuery is the part of a Cube query the dashboards use.
type cubeQuery struct {
	Measures       []string `json:"measures"`
	Dimensions     []string `json:"dimensions"`
	TimeDimensions []struct {
		Dimension   string `json:"dimension"`
		Granularity string `json:"granularity"`
	} `json:"timeDimensions"`
	Filters []struct {
		Member   string   `json:"member"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"filters"`
	Order    [][2]string `json:"order"`
	Limit    int         `json:"limit"`
	Timezone string      `json:"timezone"`
}

// row is one row of an answer, by member name: a dimension's value (nil
// for NULL), a measure's figure (nil for NULL), or a day as 2006-01-02.
type row map[string]any

// expected answers query from the events, as Cube should. It knows the
// members, filters and granularities the dashboards use, and fails on any
// other, so that a new panel cannot pass unchecked.
func expected(evs []event, query []byte) ([]row, error) {
	var q cubeQuery
	if err := json.Unmarshal(query, &q); err != nil {
		return nil, fmt.Errorf("reading the query: %w", err)
	}
	if len(q.Measures) == 0 {
		return nil, fmt.Errorf("the query has no measure: %s", query)
	}
	if q.Timezone != "" && q.Timezone != "UTC" {
		return nil, fmt.Errorf("only UTC is computed, not %s", q.Timezone)
	}
	cubeName, _, _ := strings.Cut(q.Measures[0], ".")
	def, ok := cubes[cubeName]
	if !ok {
		return nil, fmt.Errorf("no definition of cube %s", cubeName)
	}
	member := func(m string) (string, error) {
		c, name, _ := strings.Cut(m, ".")
		if c != cubeName {
			return "", fmt.Errorf("member %s is not of %s", m, cubeName)
		}
		return name, nil
	}
	measures := make([]func([]record) *float64, len(q.Measures))
	for i, m := range q.Measures {
		name, err := member(m)
		if err != nil {
			return nil, err
		}
		if measures[i] = def.measures[name]; measures[i] == nil {
			return nil, fmt.Errorf("no definition of measure %s", m)
		}
	}
	dims := make([]func(record) *string, len(q.Dimensions))
	for i, d := range q.Dimensions {
		name, err := member(d)
		if err != nil {
			return nil, err
		}
		if dims[i] = def.dimensions[name]; dims[i] == nil {
			return nil, fmt.Errorf("no definition of dimension %s", d)
		}
	}
	isTime := func(m string) bool {
		name, err := member(m)
		return err == nil && slices.Contains(def.times, name)
	}

	rs := def.rows(evs)
	for _, f := range q.Filters {
		keep, err := filter(f.Member, f.Operator, f.Values, isTime, def, member)
		if err != nil {
			return nil, err
		}
		rs = slices.DeleteFunc(rs, func(r record) bool { return !keep(r) })
	}

	var byDay string // the time member grouped by day, if any
	for _, td := range q.TimeDimensions {
		if !isTime(td.Dimension) {
			return nil, fmt.Errorf("no definition of time dimension %s", td.Dimension)
		}
		switch td.Granularity {
		case "":
		case "day":
			if byDay != "" {
				return nil, fmt.Errorf("two time dimensions by day")
			}
			byDay = td.Dimension
		default:
			return nil, fmt.Errorf("granularity %s is not computed", td.Granularity)
		}
	}

	// Groups, in the order their first record came.
	type group struct {
		key     []*string
		day     string
		records []record
	}
	groups := map[string]*group{}
	var keys []string
	for _, r := range rs {
		g := &group{}
		var k strings.Builder
		for _, d := range dims {
			v := d(r)
			g.key = append(g.key, v)
			if v == nil {
				k.WriteString("\x00N\x01")
			} else {
				k.WriteString(*v + "\x01")
			}
		}
		if byDay != "" {
			g.day = r.at.Format(time.DateOnly)
			k.WriteString(g.day)
		}
		if old, ok := groups[k.String()]; ok {
			old.records = append(old.records, r)
			continue
		}
		g.records = []record{r}
		groups[k.String()] = g
		keys = append(keys, k.String())
	}
	// A query without dimensions has one row, whatever it selects.
	if len(dims) == 0 && byDay == "" && len(keys) == 0 {
		groups[""] = &group{}
		keys = append(keys, "")
	}

	out := make([]row, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		r := row{}
		for i, d := range q.Dimensions {
			r[d] = textValue(g.key[i])
		}
		if byDay != "" {
			r[byDay+".day"] = g.day
		}
		for i, m := range q.Measures {
			r[m] = figureValue(measures[i](g.records))
		}
		out = append(out, r)
	}

	order := q.Order
	if len(order) == 0 {
		// Cube's default: by the day, else by the first measure, descending.
		if byDay != "" {
			order = [][2]string{{byDay, "asc"}}
		} else {
			order = [][2]string{{q.Measures[0], "desc"}}
		}
	}
	slices.SortStableFunc(out, func(a, b row) int {
		for _, o := range order {
			m := o[0]
			if m == byDay {
				m += ".day"
			}
			c := compareValues(a[m], b[m])
			if o[1] == "desc" {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// localMillis is Cube's form of a time in a date filter, read in UTC.
const localMillis = "2006-01-02T15:04:05.000"

// filter is the test a Cube filter puts on each record.
func filter(m, op string, values []string, isTime func(string) bool, def cubeDef, member func(string) (string, error)) (func(record) bool, error) {
	switch {
	case op == "inDateRange" && isTime(m):
		if len(values) != 2 {
			return nil, fmt.Errorf("inDateRange of %s takes two dates, got %v", m, values)
		}
		// Cube: a date is from the day's start to the day's last
		// millisecond; a time (its local form, with milliseconds) is that
		// instant; both ends included.
		if from, err1 := time.Parse(localMillis, values[0]); err1 == nil {
			to, err2 := time.Parse(localMillis, values[1])
			if err2 != nil {
				return nil, fmt.Errorf("inDateRange of %s: times %v", m, values)
			}
			return func(r record) bool { return !r.at.Before(from) && !r.at.After(to) }, nil
		}
		from, err1 := time.Parse(time.DateOnly, values[0])
		to, err2 := time.Parse(time.DateOnly, values[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("inDateRange of %s: dates %v", m, values)
		}
		end := to.AddDate(0, 0, 1).Add(-time.Millisecond)
		return func(r record) bool { return !r.at.Before(from) && !r.at.After(end) }, nil
	case op == "equals":
		name, err := member(m)
		if err != nil {
			return nil, err
		}
		dim := def.dimensions[name]
		if dim == nil {
			return nil, fmt.Errorf("no definition of dimension %s", m)
		}
		return func(r record) bool {
			v := dim(r)
			return v != nil && slices.Contains(values, *v)
		}, nil
	}
	return nil, fmt.Errorf("filter %s on %s is not computed", op, m)
}

func textValue(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func figureValue(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// compareValues orders two values of one member as the stores do: numbers
// by value, text by bytes, NULL after everything.
func compareValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if fa, ok := a.(float64); ok {
		return cmp.Compare(fa, b.(float64))
	}
	return strings.Compare(a.(string), b.(string))
}

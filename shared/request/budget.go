package request

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The cost budget of a call: what one request may ask Cube to build, bounded
// before any work starts. Cube builds a whole answer in its one heap, which
// every project on it shares, before it sends a byte of it; past its heap,
// Cube ends, for every project. cube/queryguard.js applies the same numbers
// to what reaches Cube directly.
const (
	// MaxCells bounds the answer cells of a call: for each of its queries,
	// rows (the limit, or Cube's default) × columns × compared date ranges,
	// summed over a blend. It lets through the export users need, 50,000
	// rows of a dozen columns, and refuses the shapes that ended Cube (25
	// columns of 50,000 rows, 12 compared ranges of 50,000). Measured
	// (test/guard's BenchmarkCubeHeap), an answer costs Cube 105 to 150
	// bytes of heap a cell up to 240,000 cells, and 222 at this bound: the
	// export needs 198 MB of heap, 127 MB over an idle Cube's 71.
	MaxCells = 600_000
	// DefaultLimit is the rows Cube answers when a query gives no limit
	// (CUBEJS_DB_QUERY_DEFAULT_LIMIT, whose default in Cube 0.33 is 10,000).
	DefaultLimit = 10_000
	// MaxBuckets bounds the time buckets one date range spans at its time
	// dimension's granularity ("second" over a year is 31 million). No
	// answer holds more rows than MaxLimit, so a range of more buckets than
	// that could only be answered cut short; and clients that fill the
	// buckets without data, as Cube's own client library does, would build
	// every one of them.
	MaxBuckets = 50_000
)

// columns counts the columns of a query's answer as Cube 0.33 writes them:
// one per measure and dimension, two per time dimension with a granularity
// (Cube answers both "Cube.time.day" and "Cube.time"), the same for a
// dimension given as "Cube.time.day", and one more when date ranges are
// compared (the "compareDateRange" column).
func (q *Query) columns() int64 {
	n := int64(len(q.Measures))
	for _, d := range q.Dimensions {
		n++
		if strings.Count(d, ".") == 2 {
			n++
		}
	}
	for _, td := range q.TimeDimensions {
		if td.Granularity != "" {
			n += 2
		}
		if td.CompareDateRange != nil {
			n++
		}
	}
	return n
}

// rows is the most rows one result of the query has: its limit, or Cube's
// default. ungrouped does not lower it.
func (q *Query) rows() int64 {
	if q.Limit != nil {
		return *q.Limit
	}
	return DefaultLimit
}

// ranges is how many results Cube answers the query with: one per compared
// date range (at most one time dimension compares), else one.
func (q *Query) ranges() int64 {
	for _, td := range q.TimeDimensions {
		if td.CompareDateRange != nil {
			return int64(len(td.CompareDateRange))
		}
	}
	return 1
}

// cells is the most answer cells the query may make Cube build on its own:
// rows × columns × compared date ranges.
func (q *Query) cells() int64 { return q.rows() * q.columns() * q.ranges() }

// callCells is the most answer cells of a call's queries: in a blend each
// row also carries the blend's time key, one column more.
func callCells(qs []*Query) int64 {
	var n int64
	for _, q := range qs {
		c := q.columns()
		if len(qs) > 1 {
			c++
		}
		n += q.rows() * c * q.ranges()
	}
	return n
}

// checkCells refuses a query whose answer may be over MaxCells, naming
// what to reduce.
func (q *Query) checkCells(field string) error {
	cells := q.cells()
	if cells <= MaxCells {
		return nil
	}
	limit := "limit " + strconv.FormatInt(q.rows(), 10)
	if q.Limit == nil {
		limit = "Cube's default limit " + strconv.FormatInt(DefaultLimit, 10)
	}
	shape := fmt.Sprintf("%s × %d columns", limit, q.columns())
	reduce := "lower " + field + ".limit or ask for fewer members"
	if r := q.ranges(); r > 1 {
		shape += fmt.Sprintf(" × %d compared date ranges", r)
		reduce = "lower " + field + ".limit, ask for fewer members or compare fewer date ranges"
	}
	return &Error{Field: field, Problem: fmt.Sprintf("asks for up to %s answer cells (%s); the budget is %s: %s",
		group(cells), shape, group(MaxCells), reduce)}
}

// checkCallCells refuses a blend whose answers together may be over
// MaxCells.
func checkCallCells(field string, qs []*Query) error {
	cells := callCells(qs)
	if cells <= MaxCells {
		return nil
	}
	return &Error{Field: field, Problem: fmt.Sprintf("asks for up to %s answer cells over its %d queries; the budget is %s: lower their limits, ask for fewer members or send fewer queries at once",
		group(cells), len(qs), group(MaxCells))}
}

// checkBuckets refuses a time dimension whose granularity spans more than
// MaxBuckets buckets over one of its date ranges, or a granularity finer
// than a day over a relative range whose length cannot be known before
// Cube reads it.
func (td TimeDimension) checkBuckets(field string) error {
	if td.Granularity == "" {
		return nil
	}
	check := func(at string, d DateRange) error {
		n, ok := d.buckets(td.Granularity)
		switch {
		case !ok && finerThanDay(td.Granularity):
			return &Error{Field: at, Problem: fmt.Sprintf("is a relative range whose length is known only once Cube reads it (%q), too open for %s buckets: give dates, a range such as \"last 7 days\", or a granularity of day or coarser",
				truncate(d.Relative, 64), td.Granularity)}
		case ok && n > MaxBuckets:
			spans := "spans"
			if d.Relative != "" {
				spans = "may span up to"
			}
			return &Error{Field: at, Problem: fmt.Sprintf("%s %s %s buckets; a range may span at most %s: ask for a coarser granularity or a shorter range",
				spans, groupBuckets(n), td.Granularity, group(MaxBuckets))}
		}
		return nil
	}
	if !td.DateRange.isZero() {
		if err := check(field+".dateRange", td.DateRange); err != nil {
			return err
		}
	}
	for i, d := range td.CompareDateRange {
		if err := check(field+".compareDateRange["+strconv.Itoa(i)+"]", d); err != nil {
			return err
		}
	}
	return nil
}

// fixedSeconds are the granularities of a fixed length, in seconds of
// wall-clock time (Cube buckets in the query's time zone, as a calendar
// does: a day is 24 hours).
var fixedSeconds = map[string]int64{"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}

func finerThanDay(g string) bool { return g == "second" || g == "minute" || g == "hour" }

// minSeconds and maxSeconds are the shortest and longest each unit can be.
var (
	minSeconds = map[string]int64{"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
		"month": 28 * 86400, "quarter": 90 * 86400, "year": 365 * 86400}
	maxSeconds = map[string]int64{"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
		"month": 31 * 86400, "quarter": 92 * 86400, "year": 366 * 86400}
)

// maxCount caps the count of a relative range ("last 99999999999 days"):
// far past any bound, and small enough that what is computed from it fits
// in an int64 (and is computed alike in JavaScript's numbers).
const maxCount = 1_000_000_000

// buckets is how many buckets of granularity g the range spans: exactly
// for dates, at most for a relative range it can measure; ok is false for
// a relative range it cannot.
func (d DateRange) buckets(g string) (n int64, ok bool) {
	if d.Relative == "" {
		from, to := d.Dates[0], d.Dates[len(d.Dates)-1]
		n = bucketIndex(wallClock(to, true), g) - bucketIndex(wallClock(from, false), g) + 1
		return max(n, 0), true
	}
	span, aligned, ok := relativeSpan(d.Relative)
	if !ok {
		return 0, false
	}
	if f, fixed := fixedSeconds[g]; fixed && f <= maxSeconds[aligned] && (g != "week" || aligned == "week") {
		// The range starts and ends on a bucket's bounds: whole buckets.
		return span / f, true
	}
	// Each bucket is at least minSeconds long; the range may start inside
	// one and end inside another.
	m := minSeconds[g]
	return (span+m-1)/m + 1, true
}

// wallClock reads a date of the grammar (validDate) as wall-clock time:
// a date alone is its first second, or as the end of a range its last.
func wallClock(s string, end bool) time.Time {
	if len(s) == len(time.DateOnly) {
		t, _ := time.Parse(time.DateOnly, s)
		if end {
			t = t.Add(24*time.Hour - time.Second)
		}
		return t
	}
	t, _ := time.Parse("2006-01-02T15:04:05", s[:10]+"T"+s[11:19])
	return t
}

// bucketIndex numbers t's bucket of granularity g, so that two instants'
// numbers differ by the buckets between them. Weeks start on Monday, as
// ISO weeks (and Cube's date_trunc) do.
func bucketIndex(t time.Time, g string) int64 {
	sec := t.Unix()
	days := floorDiv(sec, 86400)
	switch g {
	case "second":
		return sec
	case "minute":
		return floorDiv(sec, 60)
	case "hour":
		return floorDiv(sec, 3600)
	case "day":
		return days
	case "week":
		return floorDiv(days+3, 7) // 1970-01-01 was a Thursday
	case "month":
		return int64(t.Year())*12 + int64(t.Month()) - 1
	case "quarter":
		return int64(t.Year())*4 + (int64(t.Month())-1)/3
	}
	return int64(t.Year())
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// relativeSpan measures a relative date range as Cube 0.33 reads it
// (api-gateway's dateParser, on the range in lower case, whose rules apply
// in this order): its longest length in wall-clock seconds, and the unit
// its start and end fall on the bounds of. ok is false for the forms Cube
// hands to chrono-node's natural-language parser, whose length is known
// only once parsed.
func relativeSpan(s string) (span int64, aligned string, ok bool) {
	s = strings.ToLower(s)
	// "this week", "last month", "next quarter": one unit.
	if _, unit, found := findUnitAfter(s, []string{"this", "last", "next"}, false); found {
		return maxSeconds[unit], unit, true
	}
	// "last 7 days", "next 3 months": that many units.
	if n, unit, found := findUnitAfter(s, []string{"last", "next"}, true); found {
		return n * maxSeconds[unit], unit, true
	}
	for _, day := range []string{"today", "yesterday", "tomorrow"} {
		if strings.Contains(s, day) {
			return maxSeconds["day"], "day", true
		}
	}
	// "from 7 days ago to now": from the start of the bucket (second, minute
	// or hour when the range names one, else day) that many units ago,
	// to the end of the current one.
	if rest, found := strings.CutPrefix(s, "from "); found {
		from, to, found := strings.Cut(rest, " to ")
		if !found || strings.Contains(to, " to ") {
			return 0, "", false
		}
		n, unit, found := unitsAgo(from)
		if !found || to != "now" {
			return 0, "", false
		}
		exact := "day"
		for _, g := range []string{"second", "minute", "hour"} {
			if strings.Contains(s, g) {
				exact = g
				break
			}
		}
		return n*maxSeconds[unit] + maxSeconds[exact], exact, true
	}
	return 0, "", false
}

// relativeUnits are the units of Cube's relative ranges, as its pattern
// lists them.
var relativeUnits = []string{"day", "week", "month", "year", "quarter", "hour", "minute", "second"}

// findUnitAfter finds, anywhere in s, one of words, spaces, (with count:
// digits and spaces), and a unit, as Cube's unanchored patterns
// /(this|last|next)\s+(day|...)/ and /(last|next)\s+(\d+)\s+(day|...)/ do;
// the match that starts first wins. n is the count (1 without count).
func findUnitAfter(s string, words []string, count bool) (n int64, unit string, found bool) {
	for start := 0; start < len(s); start++ {
		for _, w := range words {
			if !strings.HasPrefix(s[start:], w) {
				continue
			}
			i := start + len(w)
			j := skipSpaces(s, i)
			if j == i {
				continue
			}
			n = 1
			if count {
				k := j
				for k < len(s) && s[k] >= '0' && s[k] <= '9' {
					k++
				}
				if k == j {
					continue
				}
				n = parseCount(s[j:k])
				if j = skipSpaces(s, k); j == k {
					continue
				}
			}
			for _, u := range relativeUnits {
				if strings.HasPrefix(s[j:], u) {
					return n, u, true
				}
			}
		}
	}
	return 0, "", false
}

func skipSpaces(s string, i int) int {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// parseCount reads a count of digits, capped at maxCount.
func parseCount(digits string) int64 {
	digits = strings.TrimLeft(digits, "0")
	if len(digits) > 9 {
		return maxCount
	}
	n, _ := strconv.ParseInt("0"+digits, 10, 64)
	return min(n, maxCount)
}

// unitsAgo reads "7 days ago" (digits, a space, a unit of a fixed or
// calendar length, an optional s, " ago"), the form chrono-node reads as
// that long before now.
func unitsAgo(s string) (int64, string, bool) {
	digits, rest, found := strings.Cut(s, " ")
	if !found || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, "", false
	}
	word, found := strings.CutSuffix(rest, " ago")
	if !found {
		return 0, "", false
	}
	word = strings.TrimSuffix(word, "s")
	for _, u := range []string{"second", "minute", "hour", "day", "week", "month", "year"} {
		if word == u {
			return parseCount(digits), u, true
		}
	}
	return 0, "", false
}

// group writes n with thousands separated by commas: 600,000.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// groupBuckets is group, for counts that may be past what is worth
// printing exactly.
func groupBuckets(n int64) string {
	if n >= 1_000_000_000_000 {
		return "more than a trillion"
	}
	return group(n)
}

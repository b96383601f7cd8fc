package request

import (
	"slices"
	"strings"
	"time"

	// The zone names a caller may use must not depend on the host's files:
	// a Lambda image may have none.
	_ "time/tzdata"
)

// The bounds of a query. Each is far above what GitLab's dashboards send
// (one or two members, one or two filters) and keeps the work of checking a
// query small and linear in its size.
const (
	// MaxLimit is the largest row limit Cube serves.
	MaxLimit = 50000
	// MaxOffset bounds query.offset.
	MaxOffset = 1<<31 - 1
	// MaxMembers bounds each of measures, dimensions and segments.
	MaxMembers = 100
	// MaxTimeDimensions bounds query.timeDimensions.
	MaxTimeDimensions = 10
	// MaxFilters bounds the filters of a query, and/or groups included, at
	// every depth.
	MaxFilters = 100
	// MaxFilterDepth bounds how deep and/or groups nest.
	MaxFilterDepth = 8
	// MaxValues bounds the values of one filter.
	MaxValues = 1000
	// MaxValueLength bounds one filter value, in bytes (a long URL fits).
	MaxValueLength = 4096
	// MaxOrder bounds query.order.
	MaxOrder = 100
	// MaxCompareDateRanges bounds a time dimension's compareDateRange.
	MaxCompareDateRanges = 12
	// MaxNameLength bounds a member name, in bytes.
	MaxNameLength = 128
	// MaxRelativeDateLength bounds a relative date range such as "last 7 days".
	MaxRelativeDateLength = 64
	// MaxQueries bounds the queries of one blending request.
	MaxQueries = 10
)

// How each string of a query reaches Cube's SQL, read in Cube 0.33's and
// 1.x's api-gateway (query.js: Joi schema, normalizeQuery, dateParser) and
// schema-compiler (BaseQuery, PostgresQuery, ClickHouseQuery):
//
//   - member names (measures, dimensions, segments, time dimensions, filter
//     and order members): looked up in the compiled data model; what reaches
//     SQL is the model's own SQL and an alias derived from the name. Cube's
//     own pattern is [A-Za-z0-9_]+ per part; this one is the same, bounded.
//   - granularity: mapped to a unit in date_trunc/toStartOf...; one of a list.
//   - timezone: pasted into SQL text unescaped by Cube 0.33
//     (AT TIME ZONE '<tz>' for Postgres and DuckDB, toTimeZone(..., '<tz>')
//     on ClickHouse); Cube 1.x checks it only on some paths. The most
//     dangerous field: an IANA zone name, in a strict character set.
//   - dateRange and compareDateRange: parsed by Cube (moment, chrono),
//     re-formatted, and bound as parameters; still held to a strict grammar.
//   - filter values: bound as parameters (ClickHouse's driver escapes them
//     into the text); any text, bounded in count and length, without control
//     characters.
//   - operator and order direction: one of a list; direction becomes ASC or
//     DESC.
//   - limit and offset: pasted as numbers; whole numbers in range.
//   - total, ungrouped, renewQuery: booleans that shape the SQL.
//   - responseFormat: one of a list; shapes the answer, not the SQL.

// granularities are the time granularities of a time dimension.
var granularities = []string{"second", "minute", "hour", "day", "week", "month", "quarter", "year"}

// dimensionGranularities are those Cube 0.33 accepts in the
// Cube.member.granularity form among dimensions: all but quarter.
var dimensionGranularities = []string{"second", "minute", "hour", "day", "week", "month", "year"}

// operators are the filter operators of Cube 0.33.
var operators = []string{
	"equals", "notEquals", "contains", "notContains", "startsWith", "notStartsWith",
	"endsWith", "notEndsWith", "in", "notIn", "gt", "gte", "lt", "lte", "set", "notSet",
	"inDateRange", "notInDateRange", "onTheDate", "beforeDate", "beforeOrOnDate",
	"afterDate", "afterOrOnDate", "measureFilter",
}

// valuesOf says how many values an operator takes: -1 for none, 0 for one
// or more, n for exactly n dates.
func valuesOf(operator string) (n int, dates bool) {
	switch operator {
	case "set", "notSet", "measureFilter":
		return -1, false
	case "inDateRange", "notInDateRange":
		return 2, true
	case "onTheDate", "beforeDate", "beforeOrOnDate", "afterDate", "afterOrOnDate":
		return 1, true
	}
	return 0, false
}

// validMember reports whether s is Cube.member, or also
// Cube.member.granularity when withGranularity is set.
func validMember(s string, withGranularity bool) bool {
	if len(s) > MaxNameLength {
		return false
	}
	parts, start := 0, 0
	var last string
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if i == start {
				return false
			}
			parts++
			last = s[start:i]
			start = i + 1
			continue
		}
		if !nameChar(s[i]) {
			return false
		}
	}
	switch parts {
	case 2:
		return true
	case 3:
		return withGranularity && slices.Contains(dimensionGranularities, last)
	}
	return false
}

func nameChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// validTimezone reports whether s is an IANA time zone name, such as UTC or
// America/Los_Angeles, written only with letters, digits, '_', '+', '-'
// and '/'. Cube 0.33 pastes it into SQL: the character set is what keeps
// it harmless there, the zone database what makes it useful.
func validTimezone(s string) bool {
	if s == "" || len(s) > 64 || s == "Local" || !isLetter(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(nameChar(c) || c == '+' || c == '-' || c == '/') || c == '/' && (i+1 == len(s) || s[i+1] == '/') {
			return false
		}
	}
	_, err := time.LoadLocation(s)
	return err == nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// validDate reports whether s is a date or a date and time as Cube takes
// them: 2024-01-31, 2024-01-31T23:59:59, with optional fractional seconds
// (up to 9 digits) and an optional Z; a space may stand for the T.
func validDate(s string) bool {
	if len(s) == len("2006-01-02") {
		_, err := time.Parse(time.DateOnly, s)
		return err == nil
	}
	if len(s) < len("2006-01-02T15:04:05") || len(s) > len("2006-01-02T15:04:05.000000000Z") {
		return false
	}
	if s[10] != 'T' && s[10] != ' ' {
		return false
	}
	rest := strings.TrimSuffix(s[len("2006-01-02T15:04:05"):], "Z")
	if rest != "" {
		if rest[0] != '.' || len(rest) < 2 {
			return false
		}
		for i := 1; i < len(rest); i++ {
			if rest[i] < '0' || rest[i] > '9' {
				return false
			}
		}
	}
	_, err := time.Parse("2006-01-02T15:04:05", s[:10]+"T"+s[11:19])
	return err == nil
}

// validRelativeDate reports whether s can be one of Cube's relative date
// ranges ("today", "last 7 days", "This week", "from 7 days ago to now"):
// letters, digits, spaces, '-' and ':' only, starting with a letter.
// Cube parses it; whether it means anything is Cube's to say.
func validRelativeDate(s string) bool {
	if s == "" || len(s) > MaxRelativeDateLength || !isLetter(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isLetter(c) || c >= '0' && c <= '9' || c == ' ' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// validValue reports whether a filter value is text without control
// characters, within MaxValueLength.
func validValue(s string) bool {
	if len(s) > MaxValueLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// Package attacks holds queries that try to reach outside their project's
// data: SQL smuggled through each string of a Cube query, another
// project's table, files of the Cube host. The request checks, the Cube
// guard and the per-project store are each tested against all of them.
package attacks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Marker is what the SQL of the attacks computes when it runs: it appears
// in an answer only if smuggled SQL was executed, never by echo, since no
// attack carries it literally.
const Marker = "ZQ1042"

// markerSQL computes Marker in SQL that DuckDB, PostgreSQL and ClickHouse
// all run.
const markerSQL = `concat('ZQ', CAST(6*7+1000 AS VARCHAR))`

// Attack is one query that must be refused (or, by Cube, answered without
// running what it smuggles).
type Attack struct {
	// Name says what it tries.
	Name string
	// Field is the part of the query the API's refusal must name.
	Field string
	// Query is the whole query, valid JSON that Cube's own schema accepts.
	Query string
}

// Base is a valid query the attacks are built on: project 1's event count
// by day, as the isolation report used.
const Base = `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","granularity":"day"}],"limit":1`

// payloads are strings that would change the SQL if pasted into it: closing
// a string literal, another project's table, stacked statements that write
// or read files, comments, control characters.
func payloads(otherProject int64) []string {
	other := fmt.Sprintf("gitlab_project_%d.snowplow_events", otherProject)
	return []string{
		// The isolation report's attack: another project's count in place
		// of this one's.
		`UTC')) "tracked_events__utc_time_day", (SELECT count(*) FROM ` + other + `) "tracked_events__count" --`,
		`UTC')) "tracked_events__utc_time_day", ` + markerSQL + ` "tracked_events__count" --`,
		`UTC'; COPY (SELECT 1) TO 'pa-attack.csv'; SELECT 1 --`,
		`UTC')) "tracked_events__utc_time_day", read_text('/etc/hostname') "tracked_events__count" --`,
		`UTC' || (SELECT ` + markerSQL + `) || '`,
		`UTC') UNION ALL SELECT * FROM ` + other + ` --`,
		`UTC'; ATTACH 'gitlab_project_2.duckdb' AS other; --`,
		`UTC'; INSTALL httpfs; LOAD httpfs; --`,
		`UTC'; SET enable_external_access = true; --`,
		"UTC\x00",
		"UTC\n--",
		`UTC"`,
		`UTC\`,
		`../../../../etc/passwd`,
		`America/New_York' --`,
		strings.Repeat("A", 300),
	}
}

// All returns every attack, for a caller whose token allows one project,
// against otherProject.
func All(otherProject int64) []Attack {
	var all []Attack
	add := func(name, field, query string) {
		all = append(all, Attack{Name: name, Field: field, Query: query})
	}
	for i, p := range payloads(otherProject) {
		s := jsonString(p)
		n := func(where string) string { return fmt.Sprintf("%s #%d", where, i+1) }
		add(n("timezone"), "query.timezone", Base+`,"timezone":`+s+`}`)
		add(n("measure"), "query.measures[0]", `{"measures":[`+s+`]}`)
		add(n("dimension"), "query.dimensions[0]", `{"measures":["TrackedEvents.count"],"dimensions":[`+s+`]}`)
		add(n("segment"), "query.segments[0]", `{"measures":["TrackedEvents.count"],"segments":[`+s+`]}`)
		add(n("time dimension"), "query.timeDimensions[0].dimension", `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":`+s+`}]}`)
		add(n("granularity"), "query.timeDimensions[0].granularity", `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","granularity":`+s+`}]}`)
		add(n("relative date range"), "query.timeDimensions[0].dateRange", `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","dateRange":`+s+`}]}`)
		add(n("date in a range"), "query.timeDimensions[0].dateRange[1]", `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","dateRange":["2024-01-01",`+s+`]}]}`)
		add(n("compared date range"), "query.timeDimensions[0].compareDateRange[1]", `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","compareDateRange":["last week",`+s+`]}]}`)
		add(n("filter member"), "query.filters[0].member", `{"measures":["TrackedEvents.count"],"filters":[{"member":`+s+`,"operator":"set"}]}`)
		add(n("filter dimension"), "query.filters[0].dimension", `{"measures":["TrackedEvents.count"],"filters":[{"dimension":`+s+`,"operator":"set"}]}`)
		add(n("filter operator"), "query.filters[0].operator", `{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.event","operator":`+s+`,"values":["x"]}]}`)
		add(n("date filter value"), "query.filters[0].values[0]", `{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.derivedTstamp","operator":"beforeDate","values":[`+s+`]}]}`)
		add(n("nested filter member"), "query.filters[0].or[0].and[0].member", `{"measures":["TrackedEvents.count"],"filters":[{"or":[{"and":[{"member":`+s+`,"operator":"set"}]}]}]}`)
		add(n("order member"), "query.order", `{"measures":["TrackedEvents.count"],"order":{`+s+`:"asc"}}`)
		add(n("order pair member"), "query.order[0]", `{"measures":["TrackedEvents.count"],"order":[[`+s+`,"asc"]]}`)
		add(n("order direction"), "query.order[0]", `{"measures":["TrackedEvents.count"],"order":[["TrackedEvents.count",`+s+`]]}`)
		add(n("response format"), "query.responseFormat", `{"measures":["TrackedEvents.count"],"responseFormat":`+s+`}`)
	}
	// The process's own zone is not a zone name.
	add("timezone Local", "query.timezone", Base+`,"timezone":"Local"}`)
	// Fields Cube does not know, or that carry SQL in other products.
	for _, k := range []string{"sql", "rowLimit", "__proto__", "constructor", "Timezone", "timezone ", "queryType", "joinHints", "cache"} {
		add("unknown field "+strconv.Quote(k), "query."+quoteIfOdd(k), `{"measures":["TrackedEvents.count"],`+jsonString(k)+`:"x"}`)
	}
	// Numbers that Cube pastes into SQL.
	for _, v := range []string{`"1; DROP TABLE x"`, `-1`, `0`, `50001`, `1.5`, `1e9`, `true`, `[1]`} {
		add("limit "+v, "query.limit", `{"measures":["TrackedEvents.count"],"limit":`+v+`}`)
	}
	for _, v := range []string{`"0 UNION SELECT 1"`, `-1`, `2147483648`, `0.5`} {
		add("offset "+v, "query.offset", `{"measures":["TrackedEvents.count"],"offset":`+v+`}`)
	}
	// Booleans given something else.
	for _, k := range []string{"total", "ungrouped", "renewQuery"} {
		add(k+" as text", "query."+k, `{"measures":["TrackedEvents.count"],"`+k+`":"true; --"}`)
	}
	// A filter value may be any text, but not control characters, nor
	// objects that a driver might expand.
	add("filter value with NUL", "query.filters[0].values[0]", `{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.event","operator":"equals","values":["x\u0000y"]}]}`)
	add("filter value object", "query.filters[0].values[0]", `{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.event","operator":"equals","values":[{"toSqlString":"1"}]}]}`)
	add("filter value array", "query.filters[0].values[0]", `{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.event","operator":"equals","values":[["x"]]}]}`)
	return all
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}

// quoteIfOdd writes a key as the API's messages name it.
func quoteIfOdd(k string) string {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return strconv.Quote(k)
		}
	}
	return k
}

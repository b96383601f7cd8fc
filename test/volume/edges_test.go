package volume

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"time"
)

// The generated sessions rarely cross midnight, and never the first
// instant of a range, where a model that selects sessions by their events
// rather than by their start would give other figures. addEdges adds such
// sessions to a generated CSV, each event a copy of the first generated
// one with its time, ids and browser changed.

// edgeSession is a session added at an edge of the ranges.
type edgeSession struct {
	user  string
	index int // domain_sessionidx
	times []time.Time
	// versions are the events' agent_version, one per time (none: the
	// template's): a session's browser is the min() of its events'.
	versions []string
}

// edgeSessions are the sessions added for ranges ending on the day of end.
func edgeSessions(end time.Time) []edgeSession {
	day := end.UTC().Truncate(24 * time.Hour)
	lastInstant := day.Add(24*time.Hour - time.Millisecond)
	var out []edgeSession
	for _, days := range rangesDays {
		from := day.AddDate(0, 0, -days)
		u := fmt.Sprintf("edge-user-%d", days)
		out = append(out,
			// Starts before the range, goes on inside it.
			edgeSession{user: u + "-a", index: 1, times: []time.Time{from.Add(-10 * time.Minute), from.Add(10 * time.Minute)}},
			// Starts at the range's first instant.
			edgeSession{user: u + "-b", index: 1, times: []time.Time{from, from.Add(5 * time.Minute)}},
			// A returning user: the first session long before the range,
			// the second inside it.
			edgeSession{user: u + "-c", index: 1, times: []time.Time{from.AddDate(0, 0, -40), from.AddDate(0, 0, -40).Add(time.Minute)}},
			edgeSession{user: u + "-c", index: 2, times: []time.Time{from.Add(36 * time.Hour), from.Add(37 * time.Hour)}},
		)
	}
	return append(out,
		// Starts at the ranges' last instant and ends the next day.
		edgeSession{user: "edge-user-last", index: 1, times: []time.Time{lastInstant, lastInstant.Add(20 * time.Minute)}},
		// Crosses midnight inside every range: its day is its start's.
		edgeSession{user: "edge-user-midnight", index: 3, times: []time.Time{day.AddDate(0, 0, -3).Add(-10 * time.Minute), day.AddDate(0, 0, -3).Add(15 * time.Minute)}},
		// Its events disagree on the browser's version.
		edgeSession{user: "edge-user-versions", index: 1,
			times:    []time.Time{day.AddDate(0, 0, -2).Add(10 * time.Hour), day.AddDate(0, 0, -2).Add(10*time.Hour + 90*time.Second)},
			versions: []string{"99.1", "98.7"}},
	)
}

// addEdges appends the edge sessions for ranges ending on the day of end
// to the generator's CSV at path, with times in whole seconds if
// wholeSeconds (rounded down, as the generator writes them).
func addEdges(path string, end time.Time, wholeSeconds bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening the generated events: %w", err)
	}
	r := csv.NewReader(f)
	header, err := r.Read()
	var template []string
	if err == nil {
		template, err = r.Read()
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("reading the first event of %s: %w", path, err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	layout := "2006-01-02 15:04:05.000"
	if wholeSeconds {
		layout = time.DateTime
	}

	out, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("adding to the generated events: %w", err)
	}
	w := csv.NewWriter(out)
	n := 0
	for i, s := range edgeSessions(end) {
		for j, at := range s.times {
			n++
			rec := append([]string(nil), template...)
			set := func(name, v string) { rec[col[name]] = v }
			ts := at.UTC().Format(layout)
			set("event_id", fmt.Sprintf("00000000-0000-4000-8000-%012d", n))
			set("event", "page_view")
			set("event_name", "page_view")
			set("collector_tstamp", ts)
			set("dvce_created_tstamp", ts)
			set("derived_tstamp", ts)
			set("domain_userid", s.user)
			set("domain_sessionid", fmt.Sprintf("00000000-0000-4000-9000-%012d", i))
			set("domain_sessionidx", strconv.Itoa(s.index))
			if j < len(s.versions) {
				set("agent_version", s.versions[j])
			}
			if err := w.Write(rec); err != nil {
				out.Close()
				return err
			}
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		out.Close()
		return fmt.Errorf("adding to the generated events: %w", err)
	}
	return out.Close()
}

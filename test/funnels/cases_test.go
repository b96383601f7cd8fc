package funnels

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"time"
)

// A case is one crafted user: page views (path, seconds after the case's
// start, session) that the generated data rarely shows, and the level it
// reaches in the demo funnels (an hour, and ten minutes).
type funnelCase struct {
	name         string
	views        []caseView
	hour, minute int
}

type caseView struct {
	path    string
	after   int64
	session int
}

const (
	home   = "/"
	guide  = "/install"
	docker = "/install/docker"
)

var cases = []funnelCase{
	{"converts", []caseView{{home, 0, 1}, {guide, 60, 1}, {docker, 120, 1}}, 3, 3},
	{"slower than ten minutes", []caseView{{home, 0, 1}, {guide, 100, 1}, {docker, 900, 1}}, 3, 2},
	{"slower than an hour", []caseView{{home, 0, 1}, {guide, 100, 1}, {docker, 4000, 1}}, 2, 2},
	{"out of order", []caseView{{guide, 0, 1}, {home, 10, 1}, {docker, 20, 1}}, 1, 1},
	{"repeated steps", []caseView{{home, 0, 1}, {home, 5, 1}, {guide, 10, 1}, {guide, 15, 1}, {docker, 20, 1}}, 3, 3},
	{"another page between", []caseView{{home, 0, 1}, {"/pricing", 5, 1}, {guide, 10, 1}}, 1, 1},
	{"another page before", []caseView{{"/pricing", 0, 1}, {home, 5, 1}, {guide, 10, 1}}, 2, 2},
	{"two sessions", []caseView{{home, 0, 1}, {guide, 300, 2}, {docker, 400, 2}}, 3, 3},
	{"two sessions a day apart", []caseView{{home, 0, 1}, {guide, 86400, 2}}, 1, 1},
	{"the chain starts again", []caseView{{home, 0, 1}, {guide, 10, 1}, {home, 1000, 2}, {guide, 1010, 2}, {docker, 1020, 2}}, 3, 3},
	{"skips a step", []caseView{{home, 0, 1}, {docker, 10, 1}, {guide, 20, 1}}, 1, 1},
	{"never at step 1", []caseView{{guide, 0, 1}, {docker, 10, 1}}, 0, 0},
}

// addCases appends the cases' page views to the generator's CSV at path,
// on the day before end, each a copy of the first generated event with its
// time, ids and path changed.
func addCases(path string, end time.Time) error {
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
	out, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("adding to the generated events: %w", err)
	}
	w := csv.NewWriter(out)
	n := 0
	start := end.AddDate(0, 0, -3).Add(9 * time.Hour)
	for i, c := range cases {
		for _, v := range c.views {
			n++
			rec := append([]string(nil), template...)
			set := func(name, value string) { rec[col[name]] = value }
			ts := start.Add(time.Duration(v.after) * time.Second).Format(time.DateTime)
			set("event_id", fmt.Sprintf("00000000-0000-4000-8000-%012d", n))
			set("event", "page_view")
			set("event_name", "page_view")
			set("collector_tstamp", ts)
			set("dvce_created_tstamp", ts)
			set("derived_tstamp", ts)
			set("page_urlpath", v.path)
			set("domain_userid", caseUser(i))
			set("domain_sessionid", fmt.Sprintf("00000000-0000-4000-9000-%09d%03d", i, v.session))
			set("domain_sessionidx", strconv.Itoa(v.session))
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

func caseUser(i int) string { return fmt.Sprintf("funnel-case-%02d", i) }

package funnels

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"productanalytics/shared/funnels"
)

// pageView is one page view of the events, as the reference reads it.
type pageView struct {
	user, id, path string
	at             time.Time
}

// readPageViews reads the page views of a generated CSV.
func readPageViews(path string) ([]pageView, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	var out []pageView
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if rec[col["event"]] != "page_view" {
			continue
		}
		at, err := time.Parse("2006-01-02 15:04:05.999", rec[col["derived_tstamp"]])
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		out = append(out, pageView{user: rec[col["domain_userid"]], id: rec[col["event_id"]], path: rec[col["page_urlpath"]], at: at})
	}
}

// windowFunnel is ClickHouse's windowFunnel(window, 'strict_order') as
// its source defines it (AggregateFunctionWindowFunnel's getEventLevel),
// written out independently of the SQL under test: the furthest step one
// user's page views reach, in time order. Each page view is one entry:
// the step its path is (1-based), or 0 when it is none.
func windowFunnel(window int64, steps []int, seconds []int64) int {
	n := 0
	for _, s := range steps {
		n = max(n, s)
	}
	// start[k] is the start time of the chain that reached step k+1.
	start := make([]int64, n)
	has := make([]bool, n)
	first := false
	level := func() int {
		for k := n; k > 0; k-- {
			if has[k-1] {
				return k
			}
		}
		return 0
	}
	for i, s := range steps {
		t := seconds[i]
		idx := s - 1
		switch {
		case idx == -1:
			// strict_order: a page view that is no step ends the scan
			// once step 1 was seen.
			if first {
				return level()
			}
		case idx == 0:
			start[0], has[0], first = t, true, true
		case first && !has[idx-1]:
			// strict_order: a step whose previous step no chain reached.
			return level()
		case has[idx-1] && t <= start[idx-1]+window:
			start[idx], has[idx] = start[idx-1], true
			if idx+1 == n {
				return n
			}
		}
	}
	return level()
}

// counts is each step's count of f over the page views in [from, to]:
// users whose level is at least that step.
func counts(f funnels.Funnel, views []pageView, from, to time.Time) []int64 {
	byUser := map[string][]pageView{}
	for _, v := range views {
		if !v.at.Before(from) && !v.at.After(to) {
			byUser[v.user] = append(byUser[v.user], v)
		}
	}
	out := make([]int64, len(f.Steps))
	for _, vs := range byUser {
		slices.SortFunc(vs, func(a, b pageView) int {
			return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id))
		})
		steps := make([]int, len(vs))
		seconds := make([]int64, len(vs))
		for i, v := range vs {
			steps[i] = slices.IndexFunc(f.Steps, func(s funnels.Step) bool { return s.Target == v.path }) + 1
			seconds[i] = v.at.Unix()
		}
		for k := range windowFunnel(f.SecondsToConvert, steps, seconds) {
			out[k]++
		}
	}
	return out
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// projectSpec is one "-projects" entry.
type projectSpec struct {
	id     int64
	events int
}

// options are the parsed command-line flags.
type options struct {
	projects []projectSpec
	days     int
	end      time.Time
	seed     uint64
	data     string
	cubeDir  string
	csvOnly  string
	node     string
	// wholeSeconds: timestamps without milliseconds.
	wholeSeconds bool
}

// parseOptions parses args (without the program name). now supplies the
// default -end so tests can pin it.
func parseOptions(args []string, now time.Time, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("demodata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: demodata [flags]\n\n"+
			"Generates synthetic Snowplow-style events for the local stack and loads them\n"+
			"into one DuckDB file per project, <data>/project_<id>.duckdb, through\n"+
			"<cube-dir>/scripts/load-events.js.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var (
		o        options
		projects string
		end      string
	)
	fs.StringVar(&projects, "projects", "1:100000,2:10000", "comma-separated `id:events` pairs: project id and number of events")
	fs.IntVar(&o.days, "days", 30, "days of history ending at -end")
	fs.StringVar(&end, "end", "", "end of the time window, RFC3339 (default now, UTC)")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed; same seed and -end give byte-identical data")
	fs.StringVar(&o.data, "data", ".local/events", "`folder` of the projects' DuckDB files; the generated projects' files are replaced")
	fs.StringVar(&o.cubeDir, "cube-dir", "cube", "directory holding scripts/load-events.js and its node_modules")
	fs.StringVar(&o.csvOnly, "csv-only", "", "write the CSVs into this `dir` and stop (no node, no DuckDB)")
	fs.StringVar(&o.node, "node", "node", "Node.js executable")
	fs.BoolVar(&o.wholeSeconds, "whole-seconds", false, "timestamps in whole seconds, for a store without fractions of a second (ClickHouse's DateTime)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if o.projects, err = parseProjects(projects); err != nil {
		return o, err
	}
	if o.days <= 0 {
		return o, errors.New("-days must be positive")
	}
	o.end = now.UTC().Truncate(time.Second)
	if end != "" {
		t, err := time.Parse(time.RFC3339, end)
		if err != nil {
			return o, fmt.Errorf("-end: want RFC3339 like 2025-01-31T00:00:00Z: %w", err)
		}
		o.end = t.UTC()
	}
	return o, nil
}

// start is the beginning of the time window.
func (o options) start() time.Time { return o.end.AddDate(0, 0, -o.days) }

// parseProjects parses "1:100000,2:10000"; ids must be unique and counts
// positive so each project's schema gets exactly one CSV.
func parseProjects(s string) ([]projectSpec, error) {
	var out []projectSpec
	seen := map[int64]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idText, countText, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("-projects: %q is not id:events", part)
		}
		id, err := strconv.ParseInt(strings.TrimSpace(idText), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("-projects: project id %q must be a positive integer", idText)
		}
		n, err := strconv.Atoi(strings.TrimSpace(countText))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-projects: event count %q must be a positive integer", countText)
		}
		if seen[id] {
			return nil, fmt.Errorf("-projects: project %d listed twice", id)
		}
		seen[id] = true
		out = append(out, projectSpec{id: id, events: n})
	}
	if len(out) == 0 {
		return nil, errors.New("-projects: no projects given")
	}
	return out, nil
}

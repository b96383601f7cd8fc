// Command demodata fills the local stack's events store with synthetic
// product analytics events, so the dashboards have something believable to
// show.
//
// For each project it generates Snowplow-like events (page views, page
// pings, link clicks, custom events) from a simulated population of
// one-off and returning visitors, writes them as CSV, and loads each CSV
// through cube/scripts/load-events.js into the project's own DuckDB file,
// <data>/project_<id>.duckdb, table gitlab_project_<id>.snowplow_events.
// The output depends only on the flags: the same -seed and -end give
// byte-identical CSVs.
//
// Usage:
//
//	go run ./cmd/demodata                                # default projects into .local/events/
//	go run ./cmd/demodata -end 2025-01-31T00:00:00Z -seed 7
//	go run ./cmd/demodata -csv-only demo-csv              # CSVs only, no node
//	go run ./cmd/demodata -csv-only demo-csv -whole-seconds # for ClickHouse's DateTime
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	stop()
	os.Exit(code)
}

// run is main without process globals. A nil loader means the node script
// from -cube-dir.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, loader Loader) int {
	began := time.Now()
	o, err := parseOptions(args, time.Now(), stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "demodata:", err)
		return 2
	}
	if err := generateAndLoad(ctx, o, stdout, stderr, loader, began); err != nil {
		fmt.Fprintln(stderr, "demodata:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}

// gzipAbove is the number of events above which a project's CSV on its
// way to the loader is compressed: 100 million events are 52 GiB of CSV,
// about a fifth of that compressed, which a machine's temporary space then
// holds beside the sort's.
const gzipAbove = 20_000_000

// generateAndLoad does the work: CSVs into -csv-only or a temporary
// directory, then (unless -csv-only) the atomic load into -data.
func generateAndLoad(ctx context.Context, o options, stdout, stderr io.Writer, loader Loader, began time.Time) error {
	dir := o.csvOnly
	if dir == "" {
		if loader == nil {
			script := filepath.Join(o.cubeDir, "scripts", "load-events.js")
			if _, err := os.Stat(script); err != nil {
				return fmt.Errorf("loader script: %w (set -cube-dir, or use -csv-only)", err)
			}
			abs, err := filepath.Abs(script)
			if err != nil {
				return err
			}
			// The loader needs Cube's DuckDB binding: on a fresh clone
			// nothing else may have installed it yet.
			if err := stack.InstallNodeModules(ctx, o.cubeDir, "Cube's node modules (npm ci, about half a minute)", stderr); err != nil {
				return fmt.Errorf("loader's node modules: %w", err)
			}
			loader = nodeLoader{node: o.node, script: abs, stdout: stderr, stderr: stderr}
		}
		tmp, err := os.MkdirTemp("", "demodata-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	files := make([]projectFile, 0, len(o.projects))
	results := make([]projectResult, 0, len(o.projects))
	for i, p := range o.projects {
		name := fmt.Sprintf("project_%d.csv", p.id)
		if p.events > gzipAbove && o.csvOnly == "" {
			name += ".gz"
		}
		path, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		cfg := ProjectConfig{ID: p.id, Index: i, Events: p.events, Start: o.start(), End: o.end, Seed: o.seed, WholeSeconds: o.wholeSeconds}
		stats, size, err := writeCSVFile(ctx, path, cfg)
		if err != nil {
			return fmt.Errorf("project %d: %w", p.id, err)
		}
		files = append(files, projectFile{id: p.id, path: path})
		results = append(results, projectResult{id: p.id, stats: stats, csvBytes: size, csvPath: path})
	}
	generated := time.Since(began)

	var dbBytes int64
	if o.csvOnly == "" {
		if err := os.MkdirAll(o.data, 0o755); err != nil {
			return err
		}
		if err := loadAtomically(ctx, loader, o.data, files); err != nil {
			return fmt.Errorf("loading into %s: %w", o.data, err)
		}
		for _, f := range files {
			if fi, err := os.Stat(eventsdb.Path(o.data, f.id)); err == nil {
				dbBytes += fi.Size()
			}
		}
	}
	printSummary(stdout, o, results, generated, time.Since(began), dbBytes)
	return nil
}

// projectResult is one project's line in the summary.
type projectResult struct {
	id       int64
	stats    Stats
	csvBytes int64
	csvPath  string
}

// printSummary reports what was generated and where it went.
func printSummary(w io.Writer, o options, results []projectResult, generated, total time.Duration, dbBytes int64) {
	fmt.Fprintf(w, "window %s .. %s (%d days), seed %d\n",
		o.start().Format(time.RFC3339), o.end.Format(time.RFC3339), o.days, o.seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "project\thost\tevents\tpage views\tsessions\tusers\tknown\treturning\tcsv\t")
	for _, r := range results {
		s := r.stats
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n",
			r.id, s.Host, s.Events, s.PageViews, s.Sessions, s.Users, s.KnownUsers, s.ReturningUsers, humanBytes(r.csvBytes))
	}
	tw.Flush()
	if o.csvOnly != "" {
		fmt.Fprintf(w, "wrote CSVs to %s in %s\n", o.csvOnly, generated.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(w, "generated in %s, loaded into %s (one file per project, %s) in %s total\n",
		generated.Round(time.Millisecond), o.data, humanBytes(dbBytes), total.Round(time.Millisecond))
}

// humanBytes formats a size like "12.3 MB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

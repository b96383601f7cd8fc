// Package funnels tests GitLab's funnels end to end: definitions in a
// folder, Cube's funnel cubes on DuckDB and on ClickHouse (Debian's 18.16
// server, as test/clickhouse runs it), through the API, against the same
// funnels computed in Go over the same events (reference_test.go).
package funnels

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/clickhouse"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
)

// Project 1 has the demo funnels (testdata/funnels/1), project 2 none.
const (
	withFunnels    = 1
	withoutFunnels = 2
)

var (
	root string
	// duck and click are the stacks: Cube on DuckDB files, and Cube on
	// the ClickHouse server; both, and their APIs, read the funnels of
	// funnelsDir.
	duck, click *stack.Stack
	server      *clickhouse.Server
	funnelsDir  string
	// eventsDir is the folder of the projects' DuckDB files.
	eventsDir string
	// views are project 1's page views, as both stores hold them.
	views []pageView
	// end is the data's last day.
	end         time.Time
	passwordKey = randomHex(32)
	logs        = &logcheck.Buffer{}
	duckLog     = &logcheck.Buffer{}
	clickLog    = &logcheck.Buffer{}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var err error
	if root, err = stack.Root("."); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "pa-funnels-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	duckDir, csvDir, chDir := filepath.Join(tmp, "events"), filepath.Join(tmp, "csv"), filepath.Join(tmp, "clickhouse")
	eventsDir = duckDir
	funnelsDir = filepath.Join(tmp, "funnels")
	for _, d := range []string{duckDir, chDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(err)
		}
	}
	if err := os.CopyFS(funnelsDir, os.DirFS("testdata/funnels")); err != nil {
		return fail(err)
	}
	// The demo funnel of make run, beside the test's own.
	if err := os.CopyFS(filepath.Join(funnelsDir, "demo"), os.DirFS(filepath.Join(root, "cube", "demo", "funnels"))); err != nil {
		return fail(err)
	}
	if err := os.Rename(filepath.Join(funnelsDir, "demo", "1", "install_with_docker.yml"), filepath.Join(funnelsDir, "1", "install_with_docker.yml")); err != nil {
		return fail(err)
	}
	bin, err := clickhouse.Install(ctx, os.Stderr)
	if err != nil {
		return fail(err)
	}
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		return fail(err)
	}
	// Whole seconds, as ClickHouse 18.16's DateTime keeps them. The window
	// ends at today's UTC midnight, so that the same seed gives the same
	// events in every whole-day range, whatever the hour the test runs.
	end = time.Now().UTC().Truncate(24 * time.Hour)
	gen := []string{"-end", end.Format(time.RFC3339), "-whole-seconds", "-projects", "1:20000,2:2000"}
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/demodata", "-csv-only", csvDir}, gen...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("generating the events: %w\n%s", err, out))
	}
	csvOf := func(p int64) string { return filepath.Join(csvDir, "project_"+strconv.FormatInt(p, 10)+".csv") }
	if err := addCases(csvOf(withFunnels), end); err != nil {
		return fail(err)
	}
	if views, err = readPageViews(csvOf(withFunnels)); err != nil {
		return fail(err)
	}
	// Cube's own loader, as make run's data has it.
	load := exec.CommandContext(ctx, "node", filepath.Join(stack.CubeDir(root), "scripts", "load-events.js"),
		filepath.Join(duckDir, "project_1.duckdb"), "1="+csvOf(1), filepath.Join(duckDir, "project_2.duckdb"), "2="+csvOf(2))
	if out, err := load.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("loading the events into DuckDB: %w\n%s", err, out))
	}

	chLog := &logcheck.Buffer{}
	server, err = clickhouse.Start(ctx, bin, clickhouse.Options{Dir: chDir, Tenants: []int64{1, 2}, PasswordKey: passwordKey, Log: chLog, LogQueries: true})
	if err != nil {
		return fail(err)
	}
	defer server.Close()
	ddl, err := os.ReadFile(filepath.Join(stack.CubeDir(root), "schema", "snowplow_events.clickhouse.sql"))
	if err != nil {
		return fail(err)
	}
	for _, p := range []int64{1, 2} {
		if _, err := server.LoadEvents(ctx, p, string(ddl), csvOf(p)); err != nil {
			return fail(err)
		}
	}

	var wg sync.WaitGroup
	var duckErr, clickErr error
	wg.Go(func() {
		duck, duckErr = stack.Start(ctx, stack.Options{Root: root, DataDir: duckDir, Log: logs, CubeLog: duckLog, FunnelsDir: funnelsDir})
	})
	wg.Go(func() {
		click, clickErr = stack.Start(ctx, stack.Options{
			Root: root, DataDir: duckDir, Log: logs, CubeLog: clickLog, FunnelsDir: funnelsDir,
			ClickHouse: &stack.ClickHouse{URL: server.URL, PasswordKey: passwordKey},
		})
	})
	wg.Wait()
	for _, s := range []*stack.Stack{duck, click} {
		if s != nil {
			defer s.Close()
		}
	}
	if duckErr != nil || clickErr != nil {
		fmt.Fprintln(os.Stderr, "DuckDB Cube:", logcheck.LastLines(duckLog.String(), 10))
		fmt.Fprintln(os.Stderr, "ClickHouse Cube:", logcheck.LastLines(clickLog.String(), 10))
		return fail(fmt.Errorf("starting the stacks: DuckDB: %v; ClickHouse: %v", duckErr, clickErr))
	}

	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "DuckDB Cube's log ends:\n"+logcheck.LastLines(duckLog.String(), 15))
		fmt.Fprintln(os.Stderr, "ClickHouse Cube's log ends:\n"+logcheck.LastLines(clickLog.String(), 15))
	}
	secrets := append([]string{stack.LocalCubeKey, stack.LocalCallerKey, passwordKey}, server.Secrets()...)
	if err := logcheck.Leak(logs.String()+duckLog.String()+clickLog.String()+chLog.String(), secrets...); err != nil {
		return fail(err)
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "funnels:", err)
	return 1
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

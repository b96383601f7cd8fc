// Package clickhouse tests the data model on the production store: Debian's
// ClickHouse server (installed when missing) holding the same demo events
// as the DuckDB files, each project read by its own read-only ClickHouse
// user. Two local stacks run side by side, one with Cube on DuckDB and one
// with Cube on ClickHouse, and every dashboard query and the documentation's
// examples must give the same figures through the API on both.
package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"testing"

	"productanalytics/internal/clickhouse"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
)

// The demo projects. Project 3 has neither a database nor a user.
var projects = []int64{1, 2}

const projectWithoutData = 3

var (
	root string
	// duck and click are the two stacks: Cube on the DuckDB files, and Cube
	// on the ClickHouse server.
	duck, click *stack.Stack
	server      *clickhouse.Server
	passwordKey = randomHex(32)
	// events is each project's event count, as loaded into ClickHouse.
	events = map[int64]int64{}
	logs   = &logcheck.Buffer{}
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
	tmp, err := os.MkdirTemp("", "pa-clickhouse-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	duckDir, csvDir, chDir := filepath.Join(tmp, "events"), filepath.Join(tmp, "csv"), filepath.Join(tmp, "clickhouse")
	if err := os.Mkdir(chDir, 0o700); err != nil {
		return fail(err)
	}
	bin, err := clickhouse.Install(ctx, os.Stderr)
	if err != nil {
		return fail(err)
	}
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		return fail(err)
	}
	// The same events for both stores: one window, whole seconds, as the
	// DateTime of Debian's ClickHouse (18.16) keeps them.
	gen := []string{"-end", time.Now().UTC().Format(time.RFC3339), "-whole-seconds"}
	if err := stack.GenerateData(ctx, root, duckDir, os.Stderr, gen...); err != nil {
		return fail(err)
	}
	if err := generateCSV(ctx, csvDir, gen...); err != nil {
		return fail(err)
	}

	chLog := &logcheck.Buffer{}
	server, err = clickhouse.Start(ctx, bin, clickhouse.Options{
		Dir: chDir, Tenants: projects, PasswordKey: passwordKey, LogQueries: true, Log: chLog,
	})
	if err != nil {
		return fail(err)
	}
	defer server.Close()
	fmt.Printf("ClickHouse %s at %s\n", server.Version, server.URL)
	ddl, err := os.ReadFile(filepath.Join(stack.CubeDir(root), "schema", "snowplow_events.clickhouse.sql"))
	if err != nil {
		return fail(err)
	}
	for _, p := range projects {
		n, err := server.LoadEvents(ctx, p, string(ddl), filepath.Join(csvDir, fmt.Sprintf("project_%d.csv", p)))
		if err != nil {
			return fail(err)
		}
		events[p] = n
	}

	duckLog, clickLog := &logcheck.Buffer{}, &logcheck.Buffer{}
	var wg sync.WaitGroup
	var duckErr, clickErr error
	wg.Go(func() {
		duck, duckErr = stack.Start(ctx, stack.Options{Root: root, DataDir: duckDir, Log: logs, CubeLog: duckLog})
	})
	wg.Go(func() {
		click, clickErr = stack.Start(ctx, stack.Options{
			Root: root, DataDir: duckDir, Log: logs, CubeLog: clickLog,
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
	for _, s := range []*stack.Stack{duck, click} {
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping a stack:", err)
			code = 1
		}
	}
	if err := server.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping ClickHouse:", err)
		code = 1
	}
	if code == 0 {
		all := logs.String() + duckLog.String() + clickLog.String() + chLog.String()
		code = checkLogs(all)
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "ClickHouse Cube's log ends:\n"+logcheck.LastLines(clickLog.String(), 20))
	}
	return code
}

// generateCSV writes the demo data generator's CSVs into dir.
func generateCSV(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/demodata", "-csv-only", dir}, args...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("generating the demo CSVs: %w\n%s", err, out)
	}
	return nil
}

// checkLogs fails the run when a key, a password or a token reached the
// API's, either Cube's or ClickHouse's log.
func checkLogs(all string) int {
	secrets := append([]string{stack.LocalCubeKey, stack.LocalCallerKey, passwordKey}, server.Secrets()...)
	for _, p := range append(projects, projectWithoutData) {
		secrets = append(secrets, clickhouse.TenantPassword(passwordKey, clickhouse.AppID(p)))
	}
	if err := logcheck.Leak(all, secrets...); err != nil {
		return fail(err)
	}
	fmt.Printf("log check: %d lines from the API, both Cubes and ClickHouse, no key, password or token\n", strings.Count(all, "\n"))
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "clickhouse:", err)
	return 1
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

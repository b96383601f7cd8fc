// Package isolation tests the third wall between tenants on the real local
// Cube and DuckDB: a tenant's connection reaches that tenant's events only
// and nothing on the file system, even when SQL injected through a query's
// timezone runs. Cube runs here without its query guard (the second wall),
// and the tests talk to Cube directly (the way a token handed out with
// include_token does), so that nothing but the store stands in the way.
package isolation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
)

// The demo projects. Project 2's count is distinctive, so that it cannot
// turn up in project 1's answers by chance.
const (
	project1Events = 20000
	project2Events = 7919
)

var (
	env     *stack.Stack
	root    string
	dataDir string // the projects' DuckDB files
	outDir  string // where attacks try to write; must stay empty
	secret  string // a file attacks try to read
	// secretText is secret's content: it must never come back.
	secretText = fmt.Sprintf("secret-%d", time.Now().UnixNano())
	cubeLog    = &logcheck.Buffer{}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if root, err = stack.Root("."); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "pa-isolation-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	dataDir, outDir = filepath.Join(tmp, "events"), filepath.Join(tmp, "out")
	secret = filepath.Join(tmp, "secret.csv")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(secret, []byte("word\n"+secretText+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		return fail(err)
	}
	projects := fmt.Sprintf("1:%d,2:%d", project1Events, project2Events)
	if err := stack.GenerateData(ctx, root, dataDir, os.Stderr, "-projects", projects); err != nil {
		return fail(err)
	}
	env, err = stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, TestModel: true, WithoutQueryGuard: true, CubeLog: cubeLog,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, cubeLog.String())
		return fail(err)
	}
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		code = 1
	}
	// Also after a failure: a crash is likely why.
	if checkCubeLog(cubeLog.String()) != 0 {
		code = 1
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "isolation:", err)
	return 1
}

// checkCubeLog fails the run when Cube did not stop cleanly (a DuckDB abort
// takes every tenant down) or a key or token reached its log.
func checkCubeLog(log string) int {
	for _, bad := range []string{"terminate called", "Aborted", "Segmentation fault"} {
		if strings.Contains(log, bad) {
			return fail(fmt.Errorf("Cube's log shows a crash (%q):\n%s", bad, logcheck.LastLines(log, 20)))
		}
	}
	if !strings.Contains(log, "cube stopping on SIGTERM") {
		return fail(fmt.Errorf("Cube did not log its stop:\n%s", logcheck.LastLines(log, 20)))
	}
	if err := logcheck.Leak(log, stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
		return fail(err)
	}
	return 0
}

// sqlRows runs SQL straight on project's file, outside Cube and without the
// lockdown: the store's own figures.
func sqlRows(t testing.TB, project int64, query string) []map[string]any {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(stack.CubeDir(root), "scripts", "query.js"), eventsdb.Path(dataDir, project), query)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("query.js: %v\n%s", err, stderr.String())
	}
	var r []map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("query.js output: %v\n%s", err, out)
	}
	return r
}

// eventCount is project's number of events, read from its own file.
func eventCount(t testing.TB, project int64) string {
	t.Helper()
	r := sqlRows(t, project, fmt.Sprintf("SELECT count(*) AS n FROM gitlab_project_%d.snowplow_events", project))
	return fmt.Sprint(r[0]["n"])
}

// checkNothingWritten fails t when a file appeared in the attack folder or
// the data folder, or the secret changed.
func checkNothingWritten(t *testing.T) {
	t.Helper()
	if entries, err := os.ReadDir(outDir); err != nil || len(entries) > 0 {
		t.Errorf("the attack folder is not empty: %v %v", names(entries), err)
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(entries), []string{eventsdb.FileName(1), eventsdb.FileName(2)}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("the data folder holds %v, want %v", got, want)
	}
	if b, err := os.ReadFile(secret); err != nil || !strings.Contains(string(b), secretText) {
		t.Errorf("the secret file changed: %q %v", b, err)
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

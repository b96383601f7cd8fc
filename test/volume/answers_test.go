// Package volume holds the dashboards to their answers and measures them at
// real data volume. TestSameAnswers computes every panel of GitLab's
// dashboards from the generated events in Go, without Cube or a database,
// and checks the API's answers against it on DuckDB and on ClickHouse, so
// that no optimisation of the data model changes a figure.
// BenchmarkData (make bench-data) opens the dashboards through the API on
// projects of 100,000 to 100 million events, beside the same SQL run
// straight on the store.
package volume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"productanalytics/internal/clickhouse"
	"productanalytics/internal/eventsdb"
	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// The project the answers are checked on: small enough for make test,
// large enough that every panel has figures on every day, sessions cross
// the ranges' first day, and top pages pass the panels' limit.
const (
	answersProject = 1
	answersEvents  = 30000
	answersDays    = 90
	answersSeed    = 11
)

// rangesDays are the date ranges the dashboards page offers.
var rangesDays = []int{7, 30, 90}

// generatorArgs are the generator's flags for the checked project, its
// window ending at end.
func generatorArgs(end time.Time, wholeSeconds bool) []string {
	args := []string{
		"-projects", fmt.Sprintf("%d:%d", answersProject, answersEvents),
		"-days", strconv.Itoa(answersDays), "-seed", strconv.Itoa(answersSeed),
		"-end", end.Format(time.RFC3339),
	}
	if wholeSeconds {
		args = append(args, "-whole-seconds")
	}
	return args
}

// TestSameAnswers: every dashboard panel over 7, 30 and 90 days, through
// the API on DuckDB, gives the figures computed from the events in Go.
// The events keep their milliseconds, as Snowplow's do.
func TestSameAnswers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := startDuckDB(t, ctx)
	file := eventsdb.Path(d.dataDir, answersProject)
	checkAnswers(t, ctx, d.stack, d.events, d.end, "duckdb", func(sts []statement) (map[string]storeRun, error) {
		runs, _, err := runAnchor(ctx, d.root, file, anchorMemory(file), 0, sts)
		return runs, err
	})
}

// duckDBProject is the checked project generated, loaded into DuckDB and
// served by a local stack.
type duckDBProject struct {
	root, dataDir string
	end           time.Time
	events        []event
	stack         *stack.Stack
}

// startDuckDB generates the checked project (its window ending now, its
// events keeping their milliseconds), loads it as the generator does and
// starts a stack over it, closed when the test ends.
func startDuckDB(t *testing.T, ctx context.Context) duckDBProject {
	t.Helper()
	root, err := rootDir()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dataDir, csvDir := filepath.Join(tmp, "events"), filepath.Join(tmp, "csv")
	end := time.Now().UTC().Truncate(time.Second)
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		t.Fatal(err)
	}
	evs := csvEvents(t, ctx, root, csvDir, end, generatorArgs(end, false))
	if err := loadDuckDB(ctx, root, dataDir, answersProject, filepath.Join(csvDir, fmt.Sprintf("project_%d.csv", answersProject))); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return duckDBProject{root: root, dataDir: dataDir, end: end, events: evs, stack: s}
}

// TestSameAnswersClickHouse: the same on ClickHouse (Debian's server,
// installed when missing), each project read by its own read-only user.
// The events are in whole seconds, as ClickHouse's DateTime keeps them.
func TestSameAnswersClickHouse(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	root, err := rootDir()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dataDir, csvDir, chDir := filepath.Join(tmp, "events"), filepath.Join(tmp, "csv"), filepath.Join(tmp, "clickhouse")
	for _, d := range []string{dataDir, chDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := clickhouse.Install(ctx, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Second)
	evs := csvEvents(t, ctx, root, csvDir, end, generatorArgs(end, true))

	key := randomKey()
	server, err := clickhouse.Start(ctx, bin, clickhouse.Options{Dir: chDir, Tenants: []int64{answersProject}, PasswordKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	n, err := loadClickHouse(ctx, root, server, answersProject, filepath.Join(csvDir, fmt.Sprintf("project_%d.csv", answersProject)))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(evs)) {
		t.Fatalf("ClickHouse holds %d events, the CSV %d", n, len(evs))
	}
	s, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dataDir,
		ClickHouse: &stack.ClickHouse{URL: server.URL, PasswordKey: key}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	user := clickhouse.AppID(answersProject)
	password := clickhouse.TenantPassword(key, user)
	checkAnswers(t, ctx, s, evs, end, "clickhouse", func(sts []statement) (map[string]storeRun, error) {
		runs := map[string]storeRun{}
		for _, st := range sts {
			runs[st.Name] = runClickHouse(ctx, server, user, password, 0, st.SQL)
		}
		return runs, nil
	})
}

// csvEvents generates the project's CSV with args into dir, adds the
// sessions at the edges of the ranges ending on the day of end, and reads
// it.
func csvEvents(t *testing.T, ctx context.Context, root, dir string, end time.Time, args []string) []event {
	t.Helper()
	if err := generateCSV(ctx, root, dir, args...); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("project_%d.csv", answersProject))
	if err := addEdges(path, end, slices.Contains(args, "-whole-seconds")); err != nil {
		t.Fatal(err)
	}
	evs, err := readEvents(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) <= answersEvents {
		t.Fatalf("read %d events, generated %d and added the edges' to them", len(evs), answersEvents)
	}
	return evs
}

// checkAnswers asks s for every dashboard query over each range ending on
// the day of end, and compares each answer with the one computed from evs;
// and so the benchmark's plain SQL for each panel on store, all run at
// once with run.
func checkAnswers(t *testing.T, ctx context.Context, s *stack.Stack, evs []event, end time.Time, store string, run func([]statement) (map[string]storeRun, error)) {
	t.Helper()
	type check struct {
		name  string
		query dashboards.Query
		sql   string
	}
	var checks []check
	var plainStatements []statement
	for _, days := range rangesDays {
		for _, q := range dashboards.QueriesOver(end, days) {
			from, to := dateRange(q.Query)
			sql, err := bestSQL(store, q.Name, answersProject, from, to)
			if err != nil {
				t.Fatal(err)
			}
			c := check{name: fmt.Sprintf("%s over %d days", q.Name, days), query: q, sql: sql}
			checks = append(checks, c)
			plainStatements = append(plainStatements, statement{Name: c.name, SQL: sql})
		}
	}
	plain, err := run(plainStatements)
	if err != nil {
		t.Fatalf("running the plain SQL: %v", err)
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			want, err := expected(evs, c.query.Query)
			if err != nil {
				t.Fatal(err)
			}
			if !anyFigure(want) {
				t.Fatalf("the computed answer has no figure but 0: %v", want)
			}
			a, err := load(ctx, s, answersProject, c.query.Query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := resultRows(a)
			if err != nil {
				t.Fatal(err)
			}
			if diffs := differences(got, want); len(diffs) > 0 {
				t.Errorf("the API's answer differs from the events':\n%s", joinLines(diffs))
			}
			p, ok := plain[c.name]
			switch {
			case !ok:
				t.Errorf("the plain SQL did not run")
			case p.err != "":
				t.Errorf("the plain SQL failed: %s\n%s", p.err, c.sql)
			default:
				if diffs := columnDifferences(p.rows, want, c.query.Query); len(diffs) > 0 {
					t.Errorf("the plain SQL's answer differs from the events':\n%s\n%s", joinLines(diffs), c.sql)
				}
			}
		})
	}
}

// anyFigure reports whether some row has a figure other than 0, so that
// a comparison of empty answers cannot pass for one of figures.
func anyFigure(rows []row) bool {
	for _, r := range rows {
		for _, v := range r {
			if f, ok := v.(float64); ok && f != 0 {
				return true
			}
		}
	}
	return false
}

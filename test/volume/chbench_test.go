package volume

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"productanalytics/internal/clickhouse"
	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/procstat"
	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// firstLoad is how many events of a large project go through
// clickhouse.Server.LoadEvents (which creates the project's database with
// the production DDL, and is bounded to one statement of two minutes);
// the rest follow in inserts of insertRows events.
const (
	firstLoad  = 1_000_000
	insertRows = 250_000
)

// benchClickHouse measures d on a local stack over a ClickHouse server
// (installed when missing) whose data is kept beside d's DuckDB file, so
// that the events load once.
func benchClickHouse(ctx context.Context, root string, d dataset) ([]rangeResult, error) {
	bin, err := clickhouse.Install(ctx, os.Stderr)
	if err != nil {
		return nil, err
	}
	chDir := filepath.Join(d.dir, "clickhouse")
	if err := os.MkdirAll(chDir, 0o700); err != nil {
		return nil, err
	}
	key := randomKey()
	chLog := &logcheck.Buffer{}
	server, err := clickhouse.Start(ctx, bin, clickhouse.Options{Dir: chDir, Tenants: []int64{benchProject}, PasswordKey: key, Log: chLog})
	if err != nil {
		return nil, err
	}
	defer server.Close()
	if err := ensureClickHouseData(ctx, root, server, d); err != nil {
		return nil, err
	}
	chPid, err := clickhousePid()
	if err != nil {
		return nil, err
	}
	cubeLog := &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{Root: root, DataDir: d.events, CubeLog: cubeLog,
		ClickHouse: &stack.ClickHouse{URL: server.URL, PasswordKey: key}})
	if err != nil {
		return nil, fmt.Errorf("starting the stack: %w; Cube's log ends:\n%s", err, logcheck.LastLines(cubeLog.String(), 10))
	}
	defer s.Close()
	user := clickhouse.AppID(benchProject)
	password := clickhouse.TenantPassword(key, user)
	runs := 3
	if d.size >= 10_000_000 {
		runs = 1
	}
	duck := map[int]map[string]storeRun{}
	rs, err := measureRanges(ctx, s, chPid, func(days int, queries []dashboards.Query) (map[string]storeRun, map[string]storeRun, int64, error) {
		stop := make(chan struct{})
		peak := peakRSS(chPid, stop)
		cubeRuns, bestRuns, err := runBoth(ctx, s, server, user, password, runs, queries)
		close(stop)
		rss := <-peak
		if err != nil {
			return nil, nil, 0, err
		}
		// The same events' answers on DuckDB, given the memory a large
		// project's sessions need there.
		var sts []statement
		for _, q := range queries {
			from, to := dateRange(q.Query)
			sql, err := bestSQL("duckdb", q.Name, benchProject, from, to)
			if err != nil {
				return nil, nil, 0, err
			}
			sts = append(sts, statement{Name: q.Name, SQL: sql})
		}
		if duck[days], _, err = runAnchor(ctx, root, eventsdb.Path(d.events, benchProject), "4GB", 0, sts); err != nil {
			return nil, nil, 0, err
		}
		return cubeRuns, bestRuns, rss, nil
	})
	for i := range rs {
		rs[i].duck = duck[rs[i].days]
	}
	return rs, err
}

// runBoth runs each query's Cube SQL and plain SQL straight on ClickHouse,
// as the project's own user.
func runBoth(ctx context.Context, s *stack.Stack, server *clickhouse.Server, user, password string, runs int, queries []dashboards.Query) (map[string]storeRun, map[string]storeRun, error) {
	cubeRuns, bestRuns := map[string]storeRun{}, map[string]storeRun{}
	for _, q := range queries {
		sql, params, err := cubeSQL(ctx, s, benchProject, q.Query)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", q.Name, err)
		}
		if sql, err = inlineParams(sql, params); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", q.Name, err)
		}
		cubeRuns[q.Name] = runClickHouse(ctx, server, user, password, runs, sql)
		from, to := dateRange(q.Query)
		best, err := bestSQL("clickhouse", q.Name, benchProject, from, to)
		if err != nil {
			return nil, nil, err
		}
		bestRuns[q.Name] = runClickHouse(ctx, server, user, password, runs, best)
	}
	return cubeRuns, bestRuns, nil
}

// clickhousePid is the ClickHouse server's process: a child of this one.
func clickhousePid() (int, error) {
	kids, err := procstat.Children(os.Getpid())
	if err != nil {
		return 0, err
	}
	for _, k := range kids {
		if strings.HasPrefix(k.Name, "clickhouse") {
			return k.Pid, nil
		}
	}
	return 0, errors.New("no ClickHouse server among this process's children")
}

// ensureClickHouseData loads d's events into server unless they are there.
func ensureClickHouseData(ctx context.Context, root string, server *clickhouse.Server, d dataset) error {
	db := clickhouse.AppID(benchProject)
	if n, err := server.Admin(ctx, "SELECT count() FROM "+db+".snowplow_events"); err == nil && strings.TrimSpace(n) == strconv.Itoa(d.size) {
		return nil
	}
	if _, err := server.Admin(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-data-csv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(os.Stderr, "loading %d events into ClickHouse (once; kept in %s)...\n", d.size, server.URL)
	start := time.Now()
	if err := generateCSV(ctx, root, tmp, d.generatorArgs()...); err != nil {
		return err
	}
	all := filepath.Join(tmp, fmt.Sprintf("project_%d.csv", benchProject))
	first := filepath.Join(tmp, "first.csv")
	rest, err := splitCSV(all, first, firstLoad)
	if err != nil {
		return err
	}
	defer rest.Close()
	if _, err := loadClickHouse(ctx, root, server, benchProject, first); err != nil {
		return err
	}
	if err := insertRest(ctx, server, db, rest); err != nil {
		return err
	}
	n, err := server.Admin(ctx, "SELECT count() FROM "+db+".snowplow_events")
	if err != nil {
		return err
	}
	if strings.TrimSpace(n) != strconv.Itoa(d.size) {
		return fmt.Errorf("ClickHouse holds %s events, want %d", strings.TrimSpace(n), d.size)
	}
	fmt.Fprintf(os.Stderr, "loaded into ClickHouse in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// splitCSV copies the header and the first n records of the CSV at path
// to first, and returns a reader of the records after them.
func splitCSV(path, first string, n int) (*csvRest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	out, err := os.Create(first)
	if err != nil {
		f.Close()
		return nil, err
	}
	w := csv.NewWriter(out)
	for i := 0; i <= n; i++ { // the header, then n records
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = w.Write(rec)
		}
		if err != nil {
			f.Close()
			out.Close()
			return nil, fmt.Errorf("splitting %s: %w", path, err)
		}
	}
	w.Flush()
	if err := errors.Join(w.Error(), out.Close()); err != nil {
		f.Close()
		return nil, err
	}
	return &csvRest{f: f, r: r}, nil
}

// csvRest is the rest of a CSV after splitCSV.
type csvRest struct {
	f *os.File
	r *csv.Reader
}

func (c *csvRest) Close() error { return c.f.Close() }

// insertRest inserts the records of rest into db's events, insertRows at a
// time, each empty field as NULL (\N) as clickhouse.Server.LoadEvents
// sends them.
func insertRest(ctx context.Context, server *clickhouse.Server, db string, rest *csvRest) error {
	for {
		var b strings.Builder
		b.WriteString("INSERT INTO " + db + ".snowplow_events FORMAT CSV\n")
		w := csv.NewWriter(&b)
		n := 0
		for ; n < insertRows; n++ {
			rec, err := rest.r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("reading the events: %w", err)
			}
			for i, v := range rec {
				if v == "" {
					rec[i] = `\N`
				}
			}
			w.Write(rec)
		}
		w.Flush()
		if n == 0 {
			return nil
		}
		if _, err := server.Admin(ctx, b.String()); err != nil {
			return fmt.Errorf("inserting events: %w", err)
		}
	}
}

// inlineParams puts Cube's parameters into its ClickHouse SQL as its
// driver does (each ? a quoted literal).
func inlineParams(sql string, params []any) (string, error) {
	var b strings.Builder
	i := 0
	for _, c := range sql {
		if c != '?' {
			b.WriteRune(c)
			continue
		}
		if i >= len(params) {
			return "", fmt.Errorf("the SQL has more placeholders than its %d parameters", len(params))
		}
		switch v := params[i].(type) {
		case string:
			b.WriteString("'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'")
		case float64:
			b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
		default:
			return "", fmt.Errorf("parameter %d is %T", i, v)
		}
		i++
	}
	if i != len(params) {
		return "", fmt.Errorf("the SQL has %d placeholders for %d parameters", i, len(params))
	}
	return b.String(), nil
}

// runClickHouse runs sql as the project's own user: once, then runs more
// times, keeping the best.
func runClickHouse(ctx context.Context, server *clickhouse.Server, user, password string, runs int, sql string) storeRun {
	var r storeRun
	for i := 0; i <= runs; i++ {
		start := time.Now()
		out, err := server.Query(ctx, user, password, sql+"\nFORMAT JSONCompact")
		took := time.Since(start)
		if err != nil {
			r.err = err.Error()
			return r
		}
		if i == 0 {
			r.first, r.best = took, took
			var res struct{ Data [][]any }
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				r.err = fmt.Sprintf("reading the answer: %v", err)
				return r
			}
			r.rows = res.Data
		}
		r.best = min(r.best, took)
	}
	return r
}

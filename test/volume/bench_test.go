package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/procstat"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
)

// inFlight is how many requests the dashboards page has in flight: a
// browser's connections to one host.
const inFlight = 6

// BenchmarkData opens GitLab's two dashboards (every query of
// shared/dashboards) through the API of a local stack, on a project of
// each size of SIZES (see make bench-data), and prints per range and
// panel the cold and warm times beside the same answer's SQL run straight
// on the store.
func BenchmarkData(b *testing.B) {
	sizes, err := benchSizes(os.Getenv("SIZES"))
	if err != nil {
		b.Fatal(err)
	}
	store := os.Getenv("STORE")
	switch store {
	case "":
		store = "duckdb"
	case "duckdb", "clickhouse":
	default:
		b.Fatalf("STORE=%s: want duckdb (the default) or clickhouse", store)
	}
	root, err := rootDir()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		b.Fatal(err)
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			d, err := prepareData(ctx, root, size, os.Stderr)
			if err != nil {
				b.Fatal(err)
			}
			var rs []rangeResult
			switch store {
			case "duckdb":
				rs, err = benchDuckDB(ctx, root, d)
			case "clickhouse":
				rs, err = benchClickHouse(ctx, root, d)
			}
			if err != nil {
				b.Fatal(err)
			}
			printResults(os.Stdout, store, d, rs)
			for _, r := range rs {
				b.ReportMetric(r.cold.total.Seconds(), fmt.Sprintf("s-cold-%dd", r.days))
				b.ReportMetric(r.warm.total.Seconds(), fmt.Sprintf("s-warm-%dd", r.days))
			}
		})
	}
}

// opening is one opening of the dashboards: each panel's answer and time,
// and the time from the first request to the last answer.
type opening struct {
	total  time.Duration
	panels map[string]answer
}

// rangeResult is what one range measured.
type rangeResult struct {
	days int
	// compile is Cube's first query after it started, for another
	// project: the data model's compilation.
	compile time.Duration
	// load is the machine's load average over the last minute, as the
	// dashboards opened.
	load       string
	cold, warm opening
	// cubePeakRSS is the most resident memory Cube had, sampled while the
	// dashboards opened; storePeakRSS the store's, when it is not in Cube.
	cubePeakRSS, storePeakRSS int64
	// cubeSQL and best are each panel's SQL straight on the store: Cube's
	// own SQL for the panel's query, and plainSQL.
	cubeSQL, best map[string]storeRun
	// anchorRSS is the store's peak memory running them, where measured.
	anchorRSS int64
	// duck is the plain SQL's answer on the DuckDB file of the same events,
	// when the store is another.
	duck    map[string]storeRun
	queries []dashboards.Query
}

// storeRun is one statement straight on the store.
type storeRun struct {
	first, best time.Duration
	rows        [][]any
	err         string
}

// open opens the dashboards: queries with inFlight requests at once, each
// asked again on "Continue wait", as the page does.
func open(ctx context.Context, s *stack.Stack, project int64, queries []dashboards.Query) opening {
	o := opening{panels: make(map[string]answer, len(queries))}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(queries) {
					return
				}
				q := queries[i]
				a, err := load(ctx, s, project, q.Query)
				if err != nil {
					a = answer{status: 0, body: []byte(err.Error()), took: time.Since(start)}
				}
				mu.Lock()
				o.panels[q.Name] = a
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	o.total = time.Since(start)
	return o
}

// peakRSS samples pid's resident memory until stop is closed, and returns
// the most it saw.
func peakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := procstat.Of(pid); err == nil {
				peak = max(peak, st.RSS)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// measureRanges restarts Cube for each range (cold: its caches empty, the
// project's database not open), opens the dashboards twice, and has
// anchor run the same panels straight on the store. storePid is the
// store's process when it is not Cube's (ClickHouse), else 0.
func measureRanges(ctx context.Context, s *stack.Stack, storePid int, anchor func(days int, queries []dashboards.Query) (map[string]storeRun, map[string]storeRun, int64, error)) ([]rangeResult, error) {
	var out []rangeResult
	for i, days := range rangesDays {
		if i > 0 {
			if err := s.StartCube(ctx); err != nil {
				return nil, err
			}
		}
		queries := dashboards.QueriesOver(benchEnd, days)
		r := rangeResult{days: days, queries: queries}
		// Cube compiles the data model on its first query, for every
		// project at once: a query for a project without data pays it,
		// and leaves the measured project's cache and database cold.
		compile, err := load(ctx, s, benchProject+1, queries[0].Query)
		if err != nil {
			return nil, fmt.Errorf("Cube's first query: %w", err)
		}
		r.compile = compile.took
		stop := make(chan struct{})
		peak := peakRSS(s.CubePID(), stop)
		storePeak := make(<-chan int64)
		if storePid > 0 {
			storePeak = peakRSS(storePid, stop)
		}
		// What else the machine runs weighs on every figure: said beside them.
		r.load = loadAverage()
		r.cold = open(ctx, s, benchProject, queries)
		r.warm = open(ctx, s, benchProject, queries)
		close(stop)
		r.cubePeakRSS = <-peak
		if storePid > 0 {
			r.storePeakRSS = <-storePeak
		}
		if r.cubeSQL, r.best, r.anchorRSS, err = anchor(days, queries); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// benchDuckDB measures d on the local stack over its DuckDB file.
func benchDuckDB(ctx context.Context, root string, d dataset) ([]rangeResult, error) {
	cubeLog := &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{Root: root, DataDir: d.events, CubeLog: cubeLog})
	if err != nil {
		return nil, fmt.Errorf("starting the stack: %w; Cube's log ends:\n%s", err, logcheck.LastLines(cubeLog.String(), 10))
	}
	defer s.Close()
	runs := 3
	if d.size >= 10_000_000 {
		runs = 1 // each run of a slow statement costs seconds
	}
	return measureRanges(ctx, s, 0, func(days int, queries []dashboards.Query) (map[string]storeRun, map[string]storeRun, int64, error) {
		var cubeStmts, bestStmts []statement
		for _, q := range queries {
			sql, params, err := cubeSQL(ctx, s, benchProject, q.Query)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("%s: %w", q.Name, err)
			}
			cubeStmts = append(cubeStmts, statement{Name: q.Name, SQL: sql, Params: params})
			from, to := dateRange(q.Query)
			best, err := bestSQL("duckdb", q.Name, benchProject, from, to)
			if err != nil {
				return nil, nil, 0, err
			}
			bestStmts = append(bestStmts, statement{Name: q.Name, SQL: best})
		}
		file := eventsdb.Path(d.events, benchProject)
		cubeRuns, rss1, err := runAnchor(ctx, root, file, anchorMemory(file), runs, cubeStmts)
		if err != nil {
			return nil, nil, 0, err
		}
		bestRuns, rss2, err := runAnchor(ctx, root, file, anchorMemory(file), runs, bestStmts)
		if err != nil {
			return nil, nil, 0, err
		}
		return cubeRuns, bestRuns, max(rss1, rss2), nil
	})
}

// dateRange is the first and last day of a dashboard query's date filter.
func dateRange(query []byte) (string, string) {
	var q cubeQuery
	json.Unmarshal(query, &q)
	for _, f := range q.Filters {
		if f.Operator == "inDateRange" && len(f.Values) == 2 {
			return f.Values[0], f.Values[1]
		}
	}
	return "", ""
}

// cubeSQL asks Cube for the SQL and parameters it runs for query on
// project (its /v1/sql), with the project's Cube token.
func cubeSQL(ctx context.Context, s *stack.Stack, project int64, query []byte) (string, []any, error) {
	token, err := cube.MintToken(stack.LocalCubeKey, project, "", time.Now())
	if err != nil {
		return "", nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.CubeURL+"/cubejs-api/v1/sql?query="+url.QueryEscape(string(query)), nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("asking Cube for the SQL: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, fmt.Errorf("reading Cube's SQL: %w", err)
	}
	var out struct {
		SQL struct {
			SQL []json.RawMessage `json:"sql"`
		} `json:"sql"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || len(out.SQL.SQL) != 2 {
		return "", nil, fmt.Errorf("Cube's /v1/sql answered %d %.300s", resp.StatusCode, body)
	}
	var sql string
	var params []any
	if err := json.Unmarshal(out.SQL.SQL[0], &sql); err != nil {
		return "", nil, fmt.Errorf("Cube's SQL: %w", err)
	}
	if err := json.Unmarshal(out.SQL.SQL[1], &params); err != nil {
		return "", nil, fmt.Errorf("Cube's SQL parameters: %w", err)
	}
	return sql, params, nil
}

// statement is one statement for anchor.js.
type statement struct {
	Name   string `json:"name"`
	SQL    string `json:"sql"`
	Params []any  `json:"params,omitempty"`
}

// largeFileBytes is the size from which Cube gives a project's database
// two threads rather than one (LARGE_FILE_BYTES in cube/tenantdb.js); the
// anchor runs on the same.
const largeFileBytes = 256 << 20

// anchorMemory is the DuckDB memory limit of the anchor's runs on file:
// what Cube gives its database at the defaults (memoryFor in
// cube/tenantdb.js: a sixth of the file, from 256MB up to 2GB).
func anchorMemory(file string) string {
	fi, err := os.Stat(file)
	if err != nil {
		return "256MB"
	}
	mb := min(int64(2000), (fi.Size()/6+999_999)/1_000_000)
	if mb <= 256 {
		return "256MB"
	}
	return strconv.FormatInt(mb, 10) + "MB"
}

// runAnchor runs statements on a DuckDB file with anchor.js, opened as
// Cube opens it, on the threads Cube gives it, within memory (a DuckDB size, e.g. 256MB), and returns each one's
// run and the process's peak resident memory above its own before the
// file was opened.
func runAnchor(ctx context.Context, root, file, memory string, runs int, statements []statement) (map[string]storeRun, int64, error) {
	threads := 1
	if fi, err := os.Stat(file); err == nil && fi.Size() >= largeFileBytes {
		threads = min(2, runtime.NumCPU())
	}
	in, err := json.Marshal(map[string]any{
		"cubeDir": stack.CubeDir(root), "file": file, "threads": threads, "memoryLimit": memory,
		"runs": runs, "statements": statements,
	})
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "test", "volume", "anchor.js"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("anchor.js: %w: %s", err, stderr.String())
	}
	var res struct {
		Statements []struct {
			Name            string
			FirstMs, BestMs float64
			Rows            [][]any
			Error           string
		}
		BaseRSSBytes int64 `json:"baseRssBytes"`
		PeakRSSBytes int64 `json:"peakRssBytes"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, 0, fmt.Errorf("anchor.js's output: %w", err)
	}
	runsOut := map[string]storeRun{}
	for _, st := range res.Statements {
		runsOut[st.Name] = storeRun{first: ms(st.FirstMs), best: ms(st.BestMs), rows: st.Rows, err: st.Error}
	}
	return runsOut, res.PeakRSSBytes - res.BaseRSSBytes, nil
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

// printResults prints one size's tables.
func printResults(w io.Writer, store string, d dataset, rs []rangeResult) {
	gen := "cached"
	if d.generated > 0 {
		gen = "generated in " + d.generated.Round(time.Second).String()
	}
	disk := "DuckDB file " + megabytes(diskBytes(d.events))
	if ch := diskBytes(filepath.Join(d.dir, "clickhouse")); ch > 0 {
		disk += ", ClickHouse data " + megabytes(ch)
	}
	fmt.Fprintf(w, "\n== %s events, %d days, on %s: %s (%s, %s)\n",
		thousands(int64(d.size)), benchDays, store, disk, gen, filepath.Base(d.dir))
	for _, r := range rs {
		// Cube runs a project's statements one at a time, so a panel's
		// cold time includes the panels queued before it: the opening is
		// compared with the store's time for all of them, each the faster
		// of the two statements.
		var cubeSum, plainSum, storeSum time.Duration
		for _, q := range r.queries {
			c, p := r.cubeSQL[q.Name], r.best[q.Name]
			cubeSum += c.first
			plainSum += p.first
			storeSum += fastest(c, p)
		}
		fmt.Fprintf(w, "\n-- over %d days: opening cold %s, warm %s; Cube's peak RSS %s (after its start and the model's compilation, %s); load average %s\n",
			r.days, seconds(r.cold.total), seconds(r.warm.total), megabytes(r.cubePeakRSS), seconds(r.compile), r.load)
		if r.storePeakRSS > 0 {
			fmt.Fprintf(w, "   the store's peak RSS while the dashboards opened: %s\n", megabytes(r.storePeakRSS))
		}
		fmt.Fprintf(w, "   the same SQL on the store alone, one statement at a time, first runs: Cube's %s, plain %s, the faster of each %s (cold opening / that: %.1f); the store's peak memory %s\n",
			seconds(cubeSum), seconds(plainSum), seconds(storeSum), float64(r.cold.total)/float64(max(storeSum, time.Millisecond)), megabytes(r.anchorRSS))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		header := "panel\tAPI cold\tAPI warm\tCube's SQL first\tbest\tplain SQL first\tbest\tcold/store\tsame answer\t"
		if r.duck != nil {
			header += "same as DuckDB\t"
		}
		fmt.Fprintln(tw, header)
		var failures []string
		for _, q := range r.queries {
			cold, warm := r.cold.panels[q.Name], r.warm.panels[q.Name]
			c, p := r.cubeSQL[q.Name], r.best[q.Name]
			cells := []string{q.Name, panelTime(cold), panelTime(warm), storeTime(c, c.first), storeTime(c, c.best),
				storeTime(p, p.first), storeTime(p, p.best), ratioText(cold, c, p), agreement(cold, c, p)}
			if r.duck != nil {
				cells = append(cells, sameAsDuckDB(cold, r.duck[q.Name], q.Query))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
			for name, a := range map[string]answer{"cold": cold, "warm": warm} {
				if a.status != http.StatusOK {
					failures = append(failures, fmt.Sprintf("%s (%s): %d %s", q.Name, name, a.status, message(a)))
				}
			}
			for name, run := range map[string]storeRun{"Cube's SQL": c, "plain SQL": p} {
				if run.err != "" {
					failures = append(failures, fmt.Sprintf("%s (%s on the store): %.200s", q.Name, name, strings.Join(strings.Fields(run.err), " ")))
				}
			}
		}
		tw.Flush()
		for _, f := range failures {
			fmt.Fprintln(w, "  failed:", f)
		}
	}
}

// message is the API's message of a refusal, or the start of its body.
func message(a answer) string {
	var m struct{ Message string }
	if json.Unmarshal(a.body, &m) == nil && m.Message != "" {
		return m.Message
	}
	return fmt.Sprintf("%.200s", a.body)
}

func panelTime(a answer) string {
	s := seconds(a.took)
	if a.status != http.StatusOK {
		s += fmt.Sprintf(" (%d)", a.status)
	}
	if a.polls > 0 {
		s += fmt.Sprintf(" (%d waits)", a.polls)
	}
	return s
}

func storeTime(r storeRun, d time.Duration) string {
	if r.err != "" {
		return "failed"
	}
	return seconds(d)
}

// ratioText is the API's cold time over the store's for the same answer:
// the faster first run of Cube's SQL and the plain SQL (each in a database
// just opened, as Cube's first query finds it).
func ratioText(a answer, c, p storeRun) string {
	anchor := fastest(c, p)
	if a.status != http.StatusOK || anchor == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(a.took)/float64(anchor))
}

// fastest is the faster first run of two statements that did not fail,
// or 0 if both did.
func fastest(c, p storeRun) time.Duration {
	var d time.Duration
	for _, r := range []storeRun{c, p} {
		if r.err == "" && r.first > 0 && (d == 0 || r.first < d) {
			d = r.first
		}
	}
	return d
}

// agreement compares the API's answer with the two statements' rows: the
// number of rows and the sum of the figure (each statement's last column,
// the API's measure).
func agreement(a answer, c, p storeRun) string {
	rows, err := resultRows(a)
	if err != nil || c.err != "" || p.err != "" {
		return "-"
	}
	api := summary{n: len(rows)}
	for _, r := range rows {
		for k, v := range r {
			if isMeasure(k) {
				f, _ := number(v)
				api.sum += f
			}
		}
	}
	if !api.near(lastColumnSummary(c.rows)) || !api.near(lastColumnSummary(p.rows)) {
		return fmt.Sprintf("no: API %v, Cube's SQL %v, plain %v", api, lastColumnSummary(c.rows), lastColumnSummary(p.rows))
	}
	return "yes"
}

// sameAsDuckDB compares the API's answer with the plain SQL's on the
// DuckDB file of the same events, row by row.
func sameAsDuckDB(a answer, duck storeRun, query []byte) string {
	rows, err := resultRows(a)
	if err != nil || duck.err != "" {
		return "-"
	}
	want := make([]row, len(rows))
	for i, r := range rows {
		want[i] = row{}
		for k, v := range r {
			switch {
			case strings.HasSuffix(k, ".day"):
				s, _ := v.(string)
				want[i][k] = s[:min(10, len(s))]
			case isMeasure(k):
				f, _ := number(v)
				want[i][k] = f
			default:
				want[i][k] = v
			}
		}
	}
	if diffs := columnDifferences(duck.rows, want, query); len(diffs) > 0 {
		return "no: " + strings.Join(diffs, "; ")
	}
	return "yes"
}

// isMeasure tells the dashboards' measures from their dimensions by name.
func isMeasure(member string) bool {
	_, name, _ := strings.Cut(member, ".")
	return strings.HasSuffix(name, "Count") || strings.HasSuffix(name, "count") ||
		strings.HasPrefix(name, "average") || strings.HasSuffix(name, "Percent") || strings.HasSuffix(name, "Percentage")
}

type summary struct {
	n   int
	sum float64
}

func (s summary) near(o summary) bool { return s.n == o.n && near(s.sum, o.sum) }

// lastColumnSummary sums each row's last column.
func lastColumnSummary(rows [][]any) summary {
	s := summary{n: len(rows)}
	for _, r := range rows {
		if len(r) > 0 {
			f, _ := number(r[len(r)-1])
			s.sum += f
		}
	}
	return s
}

// loadAverage is the machine's load average over the last minute, or
// "unknown" where /proc does not say.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	first, _, _ := strings.Cut(string(b), " ")
	return first
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func megabytes(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/(1<<20)) }

func seconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.3f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

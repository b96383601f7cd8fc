package neighbours

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/procstat"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/dashboards"
)

// sends is how many times each request of the table is sent.
const sends = 10

// caseDeadline bounds one case (the export cases: one round of 16): a
// Cube that stays up but takes minutes per answer fails it rather than
// holding the suite for rounds × the answer deadline.
const caseDeadline = 4 * time.Minute

// full reports whether the export cases run as the acceptance asks
// (NEIGHBOURS_FULL=1): ten rounds of 16 distinct exports, and the largest
// export allowed sent ten times, on each path. By default they run one
// round of 16 (16 distinct answers of about 7 MB, more than the 12 to 15
// that filled Cube's heap through its result cache) and three of the
// largest, since each such answer costs Cube seconds on a busy machine.
func full(t *testing.T) bool {
	switch raw := os.Getenv("NEIGHBOURS_FULL"); raw {
	case "", "0":
		return false
	case "1":
		return true
	default:
		t.Fatalf("NEIGHBOURS_FULL=%q: want 1 or nothing", raw)
		return false
	}
}

// exportsPerRound is the table's 16 loads with offsets 0 to 15.
const exportsPerRound = 16

// exportRows is the number of rows of each export: the API's largest
// limit.
const exportRows = 50000

// attack is one row of the table: a request that once took Cube down or
// stalled it for every project, as a caller of project 1 alone may send
// it, on one path (straight to Cube with include_token's token, or
// through the API).
type attack struct {
	name string
	// send sends it once (round counts from 0) and returns what each of
	// its requests got.
	send func(ctx context.Context, t *testing.T, round int) []answer
	// rounds is how many times it is sent.
	rounds int
	// refusal is the status that refuses it: 400 for a query past the
	// budget, 404 for a route not served to a tenant.
	refusal int
	// reduce are words of which a 400's message must hold one: what the
	// caller should reduce.
	reduce []string
	// answerable: a 200 with results is a right answer too, a request
	// within the budget.
	answerable bool
	// deadline bounds the case (default caseDeadline).
	deadline time.Duration
}

// What a 400 names for each kind of budget.
var (
	reduceCells  = []string{"limit", "dimension", "column", "row", "cell", "measure"}
	reduceRanges = []string{"compareDateRange", "dateRange", "granularity", "range", "bucket", "limit", "row", "cell"}
	reduceBlend  = []string{"10", "blend", "queries"}
)

func attacks(t *testing.T) []attack {
	toCube := func(query func(round int) string) func(context.Context, *testing.T, int) []answer {
		return func(ctx context.Context, t *testing.T, round int) []answer {
			token, err := tokens.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return []answer{cubeLoad(ctx, token, query(round))}
		}
	}
	throughAPI := func(query func(round int) string) func(context.Context, *testing.T, int) []answer {
		return func(ctx context.Context, t *testing.T, round int) []answer {
			return []answer{apiLoad(ctx, pusher, query(round))}
		}
	}
	fixed := func(q string) func(int) string { return func(int) string { return q } }
	// Each round's 16 offsets are new, so that every answer is another
	// entry of Cube's result cache.
	exports := func(load func(context.Context, *testing.T, string) answer) func(context.Context, *testing.T, int) []answer {
		return func(ctx context.Context, t *testing.T, round int) []answer {
			out := make([]answer, 0, exportsPerRound)
			for k := range exportsPerRound {
				out = append(out, load(ctx, t, exportQuery(exportColumns, exportRows, round*exportsPerRound+k)))
				if cubeUp(ctx, 0) != nil {
					break // the rest would only count the outage
				}
			}
			return out
		}
	}
	cubeExport := func(ctx context.Context, t *testing.T, q string) answer {
		token, err := tokens.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cubeLoad(ctx, token, q)
	}
	apiExport := func(ctx context.Context, _ *testing.T, q string) answer { return apiLoad(ctx, pusher, q) }
	// A blend of ten by-the-second series at the largest limit: the most
	// rows the API lets one request ask for.
	seconds := make([]string, 10)
	for i := range seconds {
		seconds[i] = fmt.Sprintf(`{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"second","dateRange":"from %d years ago to now"}],"limit":50000}`, 1000+i)
	}
	blendOfSeconds := "[" + strings.Join(seconds, ",") + "]"

	rounds, largestSends := 1, 3
	if full(t) {
		rounds, largestSends = sends, sends
	}
	// The largest export the budget allows, found once, by dry-runs, when
	// its case starts.
	var largest int
	largestExports := func(load func(context.Context, *testing.T, string) answer) func(context.Context, *testing.T, int) []answer {
		return func(ctx context.Context, t *testing.T, round int) []answer {
			if largest == 0 {
				var err error
				if largest, err = largestByDryRun(ctx, largestExport); err != nil || largest == 0 {
					t.Fatalf("the largest export allowed: %d rows (%v)", largest, err)
				}
				t.Logf("the largest export allowed: %s, %d rows", largestExport.name, largest)
			}
			return []answer{load(ctx, t, largestExport.query(largest, round))}
		}
	}
	return []attack{
		{name: "can-use without a body, straight to Cube", rounds: sends, refusal: 404, send: func(ctx context.Context, t *testing.T, _ int) []answer {
			token, err := tokens.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return []answer{ask(ctx, "POST", env.CubeURL+"/cubejs-api/v1/pre-aggregations/can-use", token, "")}
		}},
		{name: "can-use without a body, through the API", rounds: sends, refusal: 404, send: func(ctx context.Context, _ *testing.T, _ int) []answer {
			return []answer{ask(ctx, "POST", apiPath(pusher, "pre-aggregations/can-use"), "Bearer "+callerToken, "")}
		}},
		{name: "ungrouped, 25 columns, 50,000 rows, through the API", rounds: sends, refusal: 400, reduce: reduceCells, answerable: true,
			send: throughAPI(fixed(ungroupedQuery()))},
		{name: "ungrouped, 25 columns, 50,000 rows, straight to Cube", rounds: sends, refusal: 400, reduce: reduceCells, answerable: true,
			send: toCube(fixed(ungroupedQuery()))},
		{name: "12 compared thousand-year ranges by the second, through the API", rounds: sends, refusal: 400, reduce: reduceRanges, answerable: true,
			send: throughAPI(fixed(comparedQuery()))},
		{name: "12 compared thousand-year ranges by the second, straight to Cube", rounds: sends, refusal: 400, reduce: reduceRanges, answerable: true,
			send: toCube(fixed(comparedQuery()))},
		{name: "16 distinct 7 MB exports, through the API", rounds: rounds, refusal: 400, reduce: reduceCells, answerable: true,
			deadline: time.Duration(rounds) * caseDeadline, send: exports(apiExport)},
		{name: "16 distinct 7 MB exports, straight to Cube", rounds: rounds, refusal: 400, reduce: reduceCells, answerable: true,
			deadline: time.Duration(rounds) * caseDeadline, send: exports(cubeExport)},
		{name: "a blend of 1,000 queries, straight to Cube", rounds: sends, refusal: 400, reduce: reduceBlend,
			send: toCube(fixed(blendQuery(1000)))},
		{name: "a blend of 1,000 queries, through the API", rounds: sends, refusal: 400, reduce: reduceBlend,
			send: throughAPI(fixed(blendQuery(1000)))},
		{name: "a blend of 10 by-the-second series, 50,000 rows each, through the API", rounds: sends, refusal: 400, reduce: slices.Concat(reduceRanges, reduceBlend), answerable: true,
			send: throughAPI(fixed(blendOfSeconds))},
		{name: "a blend of 10 by-the-second series, 50,000 rows each, straight to Cube", rounds: sends, refusal: 400, reduce: slices.Concat(reduceRanges, reduceBlend), answerable: true,
			send: toCube(fixed(blendOfSeconds))},
		// Within the budget, answered: what the budget lets through must fit
		// Cube's heap.
		{name: "the largest export the budget allows, through the API", rounds: largestSends, refusal: 400, reduce: reduceCells, answerable: true,
			send: largestExports(apiExport)},
		{name: "the largest export the budget allows, straight to Cube", rounds: largestSends, refusal: 400, reduce: reduceCells, answerable: true,
			send: largestExports(cubeExport)},
	}
}

// callerToken is a caller token for project 1 only.
var callerToken = stack.Token(24*time.Hour, pusher)

// TestOneProjectCannotTakeCubeDown sends each request of the table, on
// each path, ten times as project 1, while project 2's dashboards are
// asked for without pause through the API. Each request must be refused
// with a clear 4xx (400 naming what to reduce, 404 for a route tenants are
// not served, 429 with Retry-After past the project's share) or answered
// within the budget; never a 5xx, a stack or a path. Cube must keep its
// process and stay ready, and every one of project 2's answers must be a
// 200 with results. A case that takes Cube down restarts it, so that the
// next case is judged on its own.
func TestOneProjectCannotTakeCubeDown(t *testing.T) {
	ctx := context.Background()
	w, err := watchNeighbour(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	for _, at := range attacks(t) {
		t.Run(at.name, func(t *testing.T) {
			pid := env.CubePID()
			from := time.Now()
			statuses := map[string]int{}
			// One refusal's text per status, to show what the caller reads.
			said := map[string]string{}
			var problems []string
			var down error
			deadline := cmp.Or(at.deadline, caseDeadline)
			cctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			for round := range at.rounds {
				if cctx.Err() != nil {
					problems = append(problems, fmt.Sprintf("sent %d of %d times within %s", round, at.rounds, deadline))
					break
				}
				for _, a := range at.send(cctx, t, round) {
					status, problem := judge(a, at)
					statuses[status]++
					if _, ok := said[status]; !ok && a.err == nil && a.status != 200 {
						said[status] = a.message()
					}
					if problem != "" {
						problems = append(problems, problem)
					}
				}
				if down = cubeUp(ctx, pid); down != nil {
					break // the rest would only count the outage
				}
			}
			to := time.Now()
			// Project 2's first answer asked after the attack: served again,
			// or not.
			wctx, wcancel := context.WithTimeout(ctx, answerDeadline)
			err := wait.For(wctx, "an answer to project 2 asked after the attack", func() bool { return w.answeredAfter(to) })
			wcancel()
			if err != nil {
				t.Error(err)
			}
			if down == nil {
				// A Cube that runs out of heap exits seconds after its last
				// answer.
				down = cubeUp(ctx, pid)
			}
			ss := w.during(from, to)
			p50, p90, most := latencies(ss)
			t.Logf("project 1 got %s in %s; project 2: %d answers, median %s, p90 %s, max %s",
				tally(statuses), to.Sub(from).Round(time.Millisecond), len(ss), ms(p50), ms(p90), ms(most))
			for _, status := range slices.Sorted(maps.Keys(said)) {
				t.Logf("%s: %q", status, said[status])
			}
			for i, p := range problems {
				if i == 5 {
					t.Errorf("... and %d more", len(problems)-i)
					break
				}
				t.Error(p)
			}
			var failed []sample
			for _, s := range ss {
				if !s.ok {
					failed = append(failed, s)
				}
			}
			for i, s := range failed {
				if i == 3 {
					t.Errorf("... project 2 got %d answers that were not 200 in all", len(failed))
					break
				}
				t.Errorf("project 2's %s, asked %s into the attack: %s", s.what, s.start.Sub(from).Round(time.Millisecond), s.got)
			}
			if len(failed) > 0 {
				t.Logf("the API's log of its last failed answers:\n%s", failedLines(apiLogs.String(), 3))
			}
			if down != nil {
				t.Errorf("Cube did not stay up: %v; its log ends:\n%s", down, cubeTail())
				restartCube(t)
			}
		})
	}
}

// judge returns the status an answer counts under, and what is wrong with
// it for attack at, if anything.
func judge(a answer, at attack) (status, problem string) {
	if a.err != nil {
		return "no answer", a.String()
	}
	status = strconv.Itoa(a.status)
	body := string(a.body)
	if leak := leaks(body); leak != "" {
		return status, fmt.Sprintf("the answer carries %s: %s", leak, a)
	}
	switch {
	case a.status == 200 && at.answerable:
		if !strings.Contains(body, `"results"`) {
			return status, "a 200 without results: " + a.String()
		}
	case a.status == 429:
		if s, err := strconv.Atoi(a.retryAfter); err != nil || s < 1 {
			return status, fmt.Sprintf("429 with Retry-After %q, want a number of seconds: %s", a.retryAfter, a)
		}
		if a.message() == "" {
			return status, "429 without a message: " + a.String()
		}
	case a.status == at.refusal:
		msg := a.message()
		if msg == "" {
			return status, fmt.Sprintf("%d without a message: %s", a.status, a)
		}
		if a.status == 400 && !slices.ContainsFunc(at.reduce, func(w string) bool {
			return strings.Contains(strings.ToLower(msg), strings.ToLower(w))
		}) {
			return status, fmt.Sprintf("400 that names none of %s, what to reduce: %q", strings.Join(at.reduce, ", "), msg)
		}
	default:
		want := fmt.Sprintf("%d or 429", at.refusal)
		if at.answerable {
			want = "200, " + want
		}
		return status, fmt.Sprintf("got %s; want %s", a, want)
	}
	return status, ""
}

// leaks names what of Cube's insides an answer shows: a stack, an
// installation path.
func leaks(body string) string {
	switch {
	case strings.Contains(body, `"stack"`), strings.Contains(body, "\n    at "), strings.Contains(body, `\n    at `):
		return "a stack"
	case strings.Contains(body, root), strings.Contains(body, "node_modules"):
		return "a path"
	}
	return ""
}

// cubeUp fails unless Cube is still the process pid (0: whichever the
// stack runs) and answers /readyz with 200.
func cubeUp(ctx context.Context, pid int) error {
	now := env.CubePID()
	if pid != 0 && now != pid {
		return fmt.Errorf("Cube's process is %d, not %d", now, pid)
	}
	if _, err := procstat.Of(now); err != nil {
		return fmt.Errorf("Cube's process has exited: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if a := exchange(ctx, "GET", env.CubeURL+"/readyz", "", ""); a.err != nil || a.status != 200 {
		return fmt.Errorf("Cube's /readyz: %s", a)
	}
	return nil
}

// cubeTail is the end of Cube's log, with the reason it exited, without
// the lines of V8's native stack.
func cubeTail() string {
	var kept []string
	for _, l := range strings.Split(logcheck.LastLines(cubeLogs.String(), 40), "\n") {
		if !strings.Contains(l, ": 0x") {
			kept = append(kept, truncate(l, 300))
		}
	}
	return strings.Join(kept[max(0, len(kept)-12):], "\n")
}

// restartCube starts Cube again after a case took it down, and warms
// project 2's dashboards again, so that the next case starts as this one
// did.
func restartCube(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.StartCube(ctx); err != nil {
		t.Fatalf("restarting Cube for the next case: %v", err)
	}
	if err := warmNeighbour(ctx, dashboards.Queries(time.Now())); err != nil {
		t.Fatalf("after restarting Cube: %v", err)
	}
}

// failedLines returns, of the last n lines of the API's log that record a
// 5xx answer, when, for which project, and the cause.
func failedLines(log string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		// A map: the line holds both "reason" (the cause) and "Reason"
		// (the metric's name), which a struct would not tell apart.
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) != nil {
			continue
		}
		if status, _ := line["status"].(float64); status >= 500 {
			out = append(out, fmt.Sprintf("%v project %v: %v after %v ms: %v", line["time"], line["project_id"], status, line["duration_ms"], line["reason"]))
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// tally is statuses as "200×3, 400×7".
func tally(statuses map[string]int) string {
	keys := slices.Sorted(maps.Keys(statuses))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, statuses[k])
	}
	return strings.Join(parts, ", ")
}

// ms is d in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

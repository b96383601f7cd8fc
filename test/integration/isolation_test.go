package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/attacks"
	"productanalytics/internal/stack"
)

// TestAttacksThroughTheAPI: each attack is refused by the API, naming the
// field it came through; nothing smuggled runs.
func TestAttacksThroughTheAPI(t *testing.T) {
	for _, a := range attacks.All(2) {
		for _, endpoint := range []string{"load", "dry-run"} {
			ans := call(t, "POST", "/api/v4/projects/1/product_analytics/request/"+endpoint, 1, `{"query":`+a.Query+`}`)
			var body struct{ Message string }
			json.Unmarshal(ans.body, &body)
			if ans.status != 400 || !strings.HasPrefix(body.Message, a.Field) {
				t.Errorf("%s %s: %s; want 400 naming %s", endpoint, a.Name, ans, a.Field)
			}
			noLeak(t, a.Name, ans.body)
		}
	}
	noFileWritten(t)
}

// TestAttacksStraightToCube sends each attack to Cube itself, with the
// Cube token the API hands out for project 1 (include_token): Cube's guard
// refuses it on its own, in every form Cube takes a query.
func TestAttacksStraightToCube(t *testing.T) {
	token := cubeToken(t, 1)
	for _, a := range attacks.All(2) {
		for _, form := range []string{"POST load", "GET load", "POST dry-run", "GET sql"} {
			status, body := askCube(t, 1, token, form, a.Query)
			// Cube 0.33 itself answers a limit above its maximum with 500.
			if status != 400 && !(status == 500 && strings.Contains(string(body), "The query limit has been exceeded")) {
				t.Errorf("%s %s: Cube answered %d %s; want its refusal", form, a.Name, status, truncate(string(body), 300))
			}
			noLeak(t, form+" "+a.Name, body)
		}
	}
	noFileWritten(t)
}

// TestCubeTokenNamesOneProject: the token the API hands out reads its own
// project through Cube and nothing else, and Cube still answers valid
// queries with it.
func TestCubeTokenNamesOneProject(t *testing.T) {
	token := cubeToken(t, 1)
	status, body := askCube(t, 1, token, "POST load", `{"measures":["TrackedEvents.count"]}`)
	if status != 200 {
		t.Fatalf("a valid query straight to Cube: %d %s", status, truncate(string(body), 300))
	}
	var out struct {
		Results []struct{ Data []map[string]any }
	}
	json.Unmarshal(body, &out)
	store := sqlRows(t, 1, `SELECT COUNT(*) AS n FROM gitlab_project_1.snowplow_events`)
	if len(out.Results) != 1 || len(out.Results[0].Data) != 1 {
		t.Fatalf("answer %s", truncate(string(body), 300))
	}
	same(t, num(t, out.Results[0].Data[0]["TrackedEvents.count"]), num(t, store[0]["n"]))
}

// cubeToken is the Cube token the API hands a caller of project with
// include_token.
func cubeToken(t *testing.T, project int64) string {
	t.Helper()
	ans := call(t, "POST", fmt.Sprintf("/api/v4/projects/%d/product_analytics/request/load", project), project,
		`{"query":{"measures":["TrackedEvents.count"]},"include_token":true}`)
	var out struct{ Token string }
	if err := json.Unmarshal(ans.body, &out); err != nil || ans.status != 200 || out.Token == "" {
		t.Fatalf("include_token: %s", ans)
	}
	return out.Token
}

// askCube sends query to the Cube of project's deployment in one of the
// forms Cube's REST API takes.
func askCube(t *testing.T, project int64, token, form, query string) (int, []byte) {
	t.Helper()
	return askCubeAt(t, env.CubeOf(project).URL(), token, form, query)
}

// askCubeAt sends query to the Cube at base and, as Cube's clients do,
// sends it again while Cube answers "Continue wait" (a large answer on a
// loaded machine outlasts the stack's short continue-wait), for a minute at
// most.
func askCubeAt(t *testing.T, base, token, form, query string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	method, endpoint, _ := strings.Cut(form, " ")
	u := base + "/cubejs-api/v1/" + endpoint
	payload := ""
	if method == "GET" {
		u += "?query=" + url.QueryEscape(query)
	} else {
		payload = `{"query":` + query + `,"queryType":"multi"}`
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, method, u, strings.NewReader(payload))
		req.Header.Set("Authorization", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(bytes.TrimSpace(b), []byte(`{"error":"Continue wait"}`)) {
			return resp.StatusCode, b
		}
	}
}

// noLeak fails when an answer carries what only smuggled SQL could have
// produced, or another project's data.
func noLeak(t *testing.T, what string, body []byte) {
	t.Helper()
	if strings.Contains(string(body), attacks.Marker) {
		t.Errorf("%s: the answer carries the marker that only smuggled SQL computes: %s", what, truncate(string(body), 300))
	}
	for _, c := range canaries(t) {
		if strings.Contains(string(body), c) {
			t.Errorf("%s: the answer carries project 2's %q", what, c)
		}
	}
}

// noFileWritten fails when an attack's COPY ... TO wrote its file where
// Cube runs.
func noFileWritten(t *testing.T) {
	t.Helper()
	f := filepath.Join(stack.CubeDir(root), "pa-attack.csv")
	if _, err := os.Stat(f); err == nil {
		os.Remove(f)
		t.Errorf("an attack wrote %s", f)
	}
}

// canaryValues are values found in project 2's events and nowhere in
// project 1's: its site's hosts and a sample of its event ids.
var canaryValues struct {
	once sync.Once
	list []string
}

func canaries(t *testing.T) []string {
	t.Helper()
	canaryValues.once.Do(func() {
		for _, r := range sqlRows(t, 2, `SELECT DISTINCT page_urlhost AS v FROM gitlab_project_2.snowplow_events WHERE page_urlhost IS NOT NULL
			UNION ALL SELECT v FROM (SELECT event_id AS v FROM gitlab_project_2.snowplow_events ORDER BY event_id LIMIT 200)`) {
			canaryValues.list = append(canaryValues.list, str(r["v"]))
		}
	})
	if len(canaryValues.list) < 100 {
		t.Fatalf("only %d canary values in project 2's events", len(canaryValues.list))
	}
	return canaryValues.list
}

// TestCanaryNeverLeaks sends at least 1,000 generated valid queries with
// project 1's token, built from the members Cube's meta lists: random
// filters, orders, granularities, time zones and date ranges. None may
// answer with project 2's values; each answers 200 or a clean 400.
func TestCanaryNeverLeaks(t *testing.T) {
	const n = 1000
	c := canaries(t)
	// No canary is project 1's too, or the test would prove nothing.
	for _, r := range sqlRows(t, 1, `SELECT COUNT(*) AS n FROM gitlab_project_1.snowplow_events WHERE page_urlhost IN (`+sqlList(c)+`) OR event_id IN (`+sqlList(c)+`)`) {
		if num(t, r["n"]) != 0 {
			t.Fatal("project 1's events carry project 2's canary values")
		}
	}
	members := metaMembers(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seedVal := rng.Uint64()
	t.Logf("query generator seed %d", seedVal)
	gen := rand.New(rand.NewPCG(seedVal, 7))
	queries := make([]string, n)
	for i := range queries {
		queries[i] = generateQuery(gen, members)
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for q := range work {
				ans, err := send("POST", "/api/v4/projects/1/product_analytics/request/load", 1, `{"query":`+q+`,"queryType":"multi"}`)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				statuses[ans.status]++
				mu.Unlock()
				if ans.status != 200 && ans.status != 400 {
					t.Errorf("%s\nanswered %s", q, ans)
				}
				if ans.status == 400 && (strings.Contains(string(ans.body), "stack") || strings.Contains(string(ans.body), "node_modules")) {
					t.Errorf("a refusal carries Cube's stack: %s", ans)
				}
				noLeak(t, q, ans.body)
			}
		})
	}
	for _, q := range queries {
		work <- q
	}
	close(work)
	wg.Wait()
	t.Logf("%d queries: %v (status: count)", n, statuses)
	if statuses[200] < n/2 {
		t.Errorf("only %d of %d generated queries answered 200: the generator tests little", statuses[200], n)
	}
}

func sqlList(vs []string) string {
	quoted := make([]string, len(vs))
	for i, v := range vs {
		quoted[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	return strings.Join(quoted, ",")
}

// cubeMembers are a cube's members by kind, as Cube's meta lists them.
type cubeMembers struct {
	measures, strings, times, segments []string
}

func metaMembers(t *testing.T) map[string]*cubeMembers {
	t.Helper()
	a := call(t, "GET", "/api/v4/projects/1/product_analytics/request/meta", 1, "")
	var meta struct {
		Cubes []struct {
			Name       string
			Measures   []struct{ Name string }
			Dimensions []struct{ Name, Type string }
			Segments   []struct{ Name string }
		}
	}
	if err := json.Unmarshal(a.body, &meta); err != nil || a.status != 200 {
		t.Fatalf("meta: %s", a)
	}
	out := map[string]*cubeMembers{}
	for _, c := range meta.Cubes {
		if c.Name == "SlowEvents" {
			continue // test-only and slow on purpose
		}
		m := &cubeMembers{}
		for _, x := range c.Measures {
			m.measures = append(m.measures, x.Name)
		}
		for _, d := range c.Dimensions {
			if d.Type == "time" {
				m.times = append(m.times, d.Name)
			} else {
				m.strings = append(m.strings, d.Name)
			}
		}
		for _, s := range c.Segments {
			m.segments = append(m.segments, s.Name)
		}
		if len(m.measures) > 0 && len(m.times) > 0 {
			out[c.Name] = m
		}
	}
	if len(out) < 3 {
		t.Fatalf("meta lists %d usable cubes", len(out))
	}
	return out
}

// generateQuery builds a valid query over one cube's members.
func generateQuery(rng *rand.Rand, all map[string]*cubeMembers) string {
	var names []string
	for n := range all {
		names = append(names, n)
	}
	slices.Sort(names)
	m := all[names[rng.IntN(len(names))]]
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	q := map[string]any{"measures": []string{pick(m.measures)}}
	if rng.IntN(2) == 0 && len(m.strings) > 0 {
		q["dimensions"] = []string{pick(m.strings)}
	}
	zones := []string{"UTC", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide", "Pacific/Chatham"}
	if rng.IntN(2) == 0 {
		q["timezone"] = pick(zones)
	}
	td := map[string]any{"dimension": pick(m.times)}
	switch rng.IntN(3) {
	case 0:
		td["granularity"] = pick([]string{"hour", "day", "week", "month", "quarter", "year"})
	case 1:
		td["dateRange"] = pick([]string{"today", "last 7 days", "this week", "last month", "from 7 days ago to now"})
	default:
		end := time.Now().UTC().AddDate(0, 0, -rng.IntN(20))
		td["dateRange"] = []string{end.AddDate(0, 0, -rng.IntN(10)).Format(time.DateOnly), end.Format(time.DateOnly)}
	}
	if rng.IntN(3) > 0 {
		q["timeDimensions"] = []any{td}
	}
	var filters []any
	if rng.IntN(2) == 0 && len(m.strings) > 0 {
		op := pick([]string{"equals", "notEquals", "contains", "notContains", "startsWith", "endsWith", "set", "notSet"})
		f := map[string]any{"member": pick(m.strings), "operator": op}
		if op != "set" && op != "notSet" {
			f["values"] = []string{pick([]string{"page_view", "/", "Chrome", "en", "x", "link_click", "Mac OS X"})}
		}
		filters = append(filters, f)
	}
	if rng.IntN(3) == 0 {
		day := time.Now().UTC().AddDate(0, 0, -rng.IntN(30)).Format(time.DateOnly)
		filters = append(filters, map[string]any{"or": []any{
			map[string]any{"member": pick(m.times), "operator": pick([]string{"beforeDate", "afterDate"}), "values": []string{day}},
			map[string]any{"member": pick(m.times), "operator": "set"},
		}})
	}
	if len(filters) > 0 {
		q["filters"] = filters
	}
	if rng.IntN(4) == 0 && len(m.segments) > 0 {
		q["segments"] = []string{pick(m.segments)}
	}
	if rng.IntN(2) == 0 {
		q["order"] = [][]string{{q["measures"].([]string)[0], pick([]string{"asc", "desc"})}}
	}
	q["limit"] = 1 + rng.IntN(500)
	b, _ := json.Marshal(q)
	return string(b)
}

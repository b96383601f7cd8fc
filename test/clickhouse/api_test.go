package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// answer is an API answer.
type answer struct {
	status int
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %.400s", a.status, a.body) }

// post sends body to path on s's API with a caller token for project.
func post(t *testing.T, s *stack.Stack, project int64, path, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.APIURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, project))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading the answer: %v", path, err)
	}
	return answer{status: resp.StatusCode, body: b}
}

func load(t *testing.T, s *stack.Stack, project int64, query string) answer {
	t.Helper()
	return post(t, s, project, fmt.Sprintf("/api/v4/projects/%d/product_analytics/request/load", project), seed.Body(query))
}

// rows returns results[0].data of a load answer.
func rows(t *testing.T, store string, a answer) []map[string]any {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("%s: load: %s", store, a)
	}
	var out struct {
		Results []struct {
			Data []map[string]any `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || len(out.Results) != 1 {
		t.Fatalf("%s: the answer is not one result: %s", store, a)
	}
	return out.Results[0].Data
}

// namedQuery is a query the dashboards or the documentation send.
type namedQuery struct {
	name  string
	query string
}

func queriesToCompare(now time.Time) []namedQuery {
	qs := []namedQuery{{"seed tracked events", seed.TrackedEvents}, {"seed sessions", seed.Sessions}}
	for _, days := range []int{7, 30} {
		for _, q := range dashboards.QueriesOver(now, days) {
			qs = append(qs, namedQuery{fmt.Sprintf("%s over %d days", q.Name, days), string(q.Query)})
		}
	}
	return qs
}

// TestDashboardsMatchDuckDB sends every dashboard query (over a week and a
// month) and the documentation's examples to both stacks, for each
// project, and checks that both answer the same rows: in the same order
// where the query defines one, as the same set of rows otherwise.
func TestDashboardsMatchDuckDB(t *testing.T) {
	now := time.Now()
	for _, q := range queriesToCompare(now) {
		for _, p := range projects {
			t.Run(fmt.Sprintf("%s project %d", q.name, p), func(t *testing.T) {
				want, got := loadBoth(t, p, q.query)
				if len(want) == 0 || !anyFigure(want) {
					t.Fatalf("DuckDB answered no figure: %v", want)
				}
				ordered := definesOrder(t, q.query)
				if !ordered {
					slices.SortFunc(want, compareRows)
					slices.SortFunc(got, compareRows)
				}
				if len(got) != len(want) {
					t.Fatalf("got %d rows from ClickHouse, want %d as from DuckDB\nClickHouse: %v\nDuckDB:     %v", len(got), len(want), got, want)
				}
				for i := range want {
					if !sameRow(got[i], want[i]) {
						t.Errorf("row %d (order defined: %v): got %v from ClickHouse, want %v as from DuckDB", i, ordered, got[i], want[i])
					}
				}
			})
		}
	}
}

// loadBoth sends query to both stacks, again if a UTC day ended between
// the two answers: a relative date range ("This week") may then have
// meant different days to each Cube.
func loadBoth(t *testing.T, project int64, query string) (duckRows, clickRows []map[string]any) {
	t.Helper()
	for {
		day := time.Now().UTC().YearDay()
		duckRows = rows(t, "DuckDB", load(t, duck, project, query))
		clickRows = rows(t, "ClickHouse", load(t, click, project, query))
		if time.Now().UTC().YearDay() == day {
			return duckRows, clickRows
		}
	}
}

// definesOrder reports whether query fixes the order of its rows: its
// order names every dimension, or it has no dimension and Cube orders it
// by its one time dimension with a granularity (each row a day).
func definesOrder(t *testing.T, query string) bool {
	t.Helper()
	var q struct {
		Dimensions     []string          `json:"dimensions"`
		TimeDimensions []json.RawMessage `json:"timeDimensions"`
		Order          json.RawMessage   `json:"order"`
	}
	if err := json.Unmarshal([]byte(query), &q); err != nil {
		t.Fatal(err)
	}
	var ordered []string
	var pairs [][2]string
	if json.Unmarshal(q.Order, &pairs) == nil {
		for _, p := range pairs {
			ordered = append(ordered, p[0])
		}
	} else {
		// An object's keys; their order does not matter here.
		var byKey map[string]string
		json.Unmarshal(q.Order, &byKey)
		for k := range byKey {
			ordered = append(ordered, k)
		}
	}
	var granular []string
	for _, raw := range q.TimeDimensions {
		var td struct{ Dimension, Granularity string }
		json.Unmarshal(raw, &td)
		if td.Granularity != "" {
			granular = append(granular, td.Dimension)
		}
	}
	if len(q.Dimensions) == 0 && len(granular) == 1 && (len(ordered) == 0 || slices.Contains(ordered, granular[0])) {
		return true
	}
	for _, d := range append(q.Dimensions, granular...) {
		if !slices.Contains(ordered, d) {
			return false
		}
	}
	return len(ordered) > 0
}

// anyFigure reports whether some row has a number other than 0.
func anyFigure(rows []map[string]any) bool {
	for _, r := range rows {
		for _, v := range r {
			if f, ok := number(v); ok && f != 0 {
				return true
			}
		}
	}
	return false
}

// sameRow compares two rows member by member: numbers as numbers, to the
// precision two databases' float arithmetic shares, anything else exactly.
func sameRow(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return false
		}
		fa, okA := number(va)
		fb, okB := number(vb)
		switch {
		case okA && okB:
			if math.Abs(fa-fb) > 1e-9*math.Max(1, math.Abs(fb)) {
				return false
			}
		case fmt.Sprint(va) != fmt.Sprint(vb):
			return false
		}
	}
	return true
}

// compareRows orders rows by their members' text, for comparing as sets.
func compareRows(a, b map[string]any) int {
	return strings.Compare(rowKey(a), rowKey(b))
}

func rowKey(r map[string]any) string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		v := fmt.Sprint(r[k])
		// Figures rounded, so that two databases' last bits sort alike.
		if f, ok := number(r[k]); ok {
			v = strconv.FormatFloat(f, 'g', 9, 64)
		}
		fmt.Fprintf(&b, "%s=%s;", k, v)
	}
	return b.String()
}

// number reads a figure as clients do: Cube sends numbers as strings.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// TestProjectWithoutUser: a project with no database has no ClickHouse
// user either, and the API answers as it does on DuckDB: 404, GitLab's
// message, the same body.
func TestProjectWithoutUser(t *testing.T) {
	const want = "404 Clickhouse Database Not Found"
	bodies := map[string]string{}
	for name, s := range map[string]*stack.Stack{"ClickHouse": click, "DuckDB": duck} {
		a := load(t, s, projectWithoutData, `{"measures":["TrackedEvents.count"]}`)
		var body struct{ Message string }
		if err := json.Unmarshal(a.body, &body); err != nil || a.status != 404 || body.Message != want {
			t.Errorf("%s: got %s, want 404 with the message %q", name, a, want)
		}
		bodies[name] = string(a.body)
	}
	if bodies["ClickHouse"] != bodies["DuckDB"] {
		t.Errorf("got %s on ClickHouse, want %s as on DuckDB", bodies["ClickHouse"], bodies["DuckDB"])
	}
}

package funnels

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/funnels"
)

// answer is an API or Cube answer.
type answer struct {
	status int
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %.400s", a.status, a.body) }

// call sends a request (a load body, or "" for a GET) with project's
// token to url, again on each "Continue wait".
func call(ctx context.Context, url, auth, body string) (answer, error) {
	for {
		method, rd := http.MethodGet, io.Reader(nil)
		if body != "" {
			method, rd = http.MethodPost, strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, rd)
		if err != nil {
			return answer{}, err
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return answer{}, err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return answer{}, err
		}
		if res.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"Continue wait"`)) {
			continue
		}
		return answer{res.StatusCode, b}, nil
	}
}

func apiURL(s *stack.Stack, project int64, what string) string {
	return fmt.Sprintf("%s/api/v4/projects/%d/product_analytics/%s", s.APIURL, project, what)
}

func token(project int64) string { return "Bearer " + stack.Token(time.Hour, project) }

// funnelQuery is the dashboards' query of a funnel: count by step over a
// date range.
func funnelQuery(name string, from, to time.Time) string {
	return fmt.Sprintf(`{"measures":["%[1]s.count"],"dimensions":["%[1]s.step"],"order":[["%[1]s.step","asc"]],`+
		`"filters":[{"member":"%[1]s.date","operator":"inDateRange","values":["%[2]s","%[3]s"]}]}`,
		name, from.Format("2006-01-02T15:04:05.000"), to.Format("2006-01-02T15:04:05.000"))
}

// stepCounts reads a funnel load's answer as counts by step (1-based,
// steps missing as 0).
func stepCounts(a answer, name string, steps int) ([]int64, error) {
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("load: %s", a)
	}
	var out struct {
		Results []struct {
			Data []map[string]any `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || len(out.Results) != 1 {
		return nil, fmt.Errorf("not one result: %s", a)
	}
	counts := make([]int64, steps)
	for _, row := range out.Results[0].Data {
		var step, n int64
		if _, err := fmt.Sscan(fmt.Sprint(row[name+".step"]), &step); err != nil || step < 1 || int(step) > steps {
			return nil, fmt.Errorf("row %v: no step 1..%d", row, steps)
		}
		if _, err := fmt.Sscan(fmt.Sprint(row[name+".count"]), &n); err != nil {
			return nil, fmt.Errorf("row %v: no count", row)
		}
		counts[step-1] = n
	}
	return counts, nil
}

// demoFunnels are project 1's funnels as the API reads them: install (an
// hour), install_with_docker (make run's demo funnel) and quick_install
// (ten minutes).
func demoFunnels(t *testing.T) []funnels.Funnel {
	t.Helper()
	set, err := funnels.Read(context.Background(), funnels.Dir{Root: funnelsDir}, withFunnels)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Funnels) != 3 || len(set.Invalid) != 0 {
		t.Fatalf("project 1's funnels: %+v", set)
	}
	return set.Funnels
}

// TestReferenceCases checks the Go computation on the crafted users: it
// is the yardstick of the stores' answers.
func TestReferenceCases(t *testing.T) {
	fs := demoFunnels(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var own []pageView
			for _, v := range views {
				if v.user == caseUser(i) {
					own = append(own, v)
				}
			}
			for _, f := range []struct {
				funnel funnels.Funnel
				want   int
			}{{fs[0], c.hour}, {fs[1], c.minute}, {fs[2], c.minute}} {
				got := counts(f.funnel, own, end.AddDate(0, 0, -29), end.Add(24*time.Hour-time.Millisecond))
				level := 0
				for _, n := range got {
					level += int(n)
				}
				if level != f.want {
					t.Errorf("%s: level %d, want %d (counts %v)", f.funnel.Name, level, f.want, got)
				}
			}
		})
	}
}

// TestStoresAnswerTheReference: each demo funnel's counts by step, through
// the API, on DuckDB and on ClickHouse, are those computed in Go.
func TestStoresAnswerTheReference(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	last := end.Add(24*time.Hour - time.Millisecond)
	day := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000") }
	// Each range, as the events it takes and as its filter on the funnel's
	// date (inDateRange as the dashboards send it; beforeDate and afterDate
	// are strict).
	ranges := []struct {
		name     string
		from, to time.Time
		filter   func(name string) string
	}{
		{"30 days", end.AddDate(0, 0, -29), last, nil},
		{"7 days", end.AddDate(0, 0, -6), last, nil},
		{"the crafted users' day", end.AddDate(0, 0, -3), end.AddDate(0, 0, -2).Add(-time.Millisecond), nil},
		{"before a date", time.Time{}, end.AddDate(0, 0, -10).Add(-time.Millisecond), func(name string) string {
			return `{"member":"` + name + `.date","operator":"beforeDate","values":["` + day(end.AddDate(0, 0, -10)) + `"]}`
		}},
		{"after a date", end.AddDate(0, 0, -10).Add(time.Millisecond), end.AddDate(1, 0, 0), func(name string) string {
			return `{"member":"` + name + `.date","operator":"afterDate","values":["` + day(end.AddDate(0, 0, -10)) + `"]}`
		}},
	}
	for _, f := range demoFunnels(t) {
		for _, r := range ranges {
			want := counts(f, views, r.from, r.to)
			query := funnelQuery(f.Name, r.from, r.to)
			if r.filter != nil {
				query = `{"measures":["` + f.Name + `.count"],"dimensions":["` + f.Name + `.step"],"filters":[` + r.filter(f.Name) + `]}`
			}
			for _, s := range []struct {
				name string
				s    *stack.Stack
			}{{"DuckDB", duck}, {"ClickHouse", click}} {
				t.Run(f.Name+"/"+r.name+"/"+s.name, func(t *testing.T) {
					a, err := call(ctx, apiURL(s.s, withFunnels, "request/load"), token(withFunnels), seed.Body(query))
					if err != nil {
						t.Fatal(err)
					}
					got, err := stepCounts(a, f.Name, len(f.Steps))
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("counts by step %v", got)
					if !slices.Equal(got, want) {
						t.Errorf("counts by step %v, computed %v", got, want)
					}
					// Every range reaches a second step and loses users on the
					// way; the whole window reaches the last step too (a shorter
					// range may not).
					if want[0] == 0 || want[1] == 0 || want[len(want)-1] == want[0] || (r.name == "30 days" && want[len(want)-1] == 0) {
						t.Errorf("the data shows no funnel: %v", want)
					}
				})
			}
		}
	}
}

// metaCubes lists the cubes of a project's meta.
func metaCubes(ctx context.Context, s *stack.Stack, project int64) ([]string, error) {
	a, err := call(ctx, apiURL(s, project, "request/meta"), token(project), "")
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("meta: %s", a)
	}
	var meta struct {
		Cubes []struct {
			Name       string
			Measures   []struct{ Name string }
			Dimensions []struct{ Name, Type string }
		}
	}
	if err := json.Unmarshal(a.body, &meta); err != nil {
		return nil, err
	}
	var names []string
	for _, c := range meta.Cubes {
		names = append(names, c.Name)
		if strings.ToLower(c.Name) == c.Name {
			var members []string
			for _, m := range c.Measures {
				members = append(members, m.Name)
			}
			for _, d := range c.Dimensions {
				members = append(members, d.Name+":"+d.Type)
			}
			want := []string{c.Name + ".count", c.Name + ".step:number", c.Name + ".date:time"}
			if !slices.Equal(members, want) {
				return nil, fmt.Errorf("funnel cube %s has %v, want %v", c.Name, members, want)
			}
		}
	}
	return names, nil
}

// TestMetaListsOwnFunnelsOnly: project 1's meta lists its funnels beside
// the shared cubes; project 2's lists the shared cubes only.
func TestMetaListsOwnFunnelsOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range []*stack.Stack{duck, click} {
		one, err := metaCubes(ctx, s, withFunnels)
		if err != nil {
			t.Fatal(err)
		}
		two, err := metaCubes(ctx, s, withoutFunnels)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"install", "install_with_docker", "quick_install"} {
			if !slices.Contains(one, name) {
				t.Errorf("project 1's meta %v lacks %s", one, name)
			}
			if slices.Contains(two, name) {
				t.Errorf("project 2's meta %v lists project 1's %s", two, name)
			}
		}
		if !slices.Contains(two, "TrackedEvents") || !slices.Contains(one, "TrackedEvents") {
			t.Errorf("a meta lacks the shared cubes: %v / %v", one, two)
		}
	}
}

// TestOtherProjectsCannotReachAFunnel: project 2 asking for project 1's
// funnel gets the 400 of any unknown cube, through the API and straight
// from Cube with the token include_token hands out.
func TestOtherProjectsCannotReachAFunnel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := funnelQuery("install", end.AddDate(0, 0, -29), end)
	const want = "Cube 'install' not found for path 'install.count'"
	a, err := call(ctx, apiURL(duck, withoutFunnels, "request/load")+"?include_token=true", token(withoutFunnels), seed.Body(q))
	if err != nil {
		t.Fatal(err)
	}
	if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), want) {
		t.Fatalf("project 2 through the API: %s, want 400 %q", a, want)
	}
	// A token of project 2's, from an answer of its own.
	ok, err := call(ctx, apiURL(duck, withoutFunnels, "request/load")+"?include_token=true", token(withoutFunnels), seed.Body(seed.Sessions))
	if err != nil {
		t.Fatal(err)
	}
	var withToken struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(ok.body, &withToken); err != nil || withToken.Token == "" {
		t.Fatalf("no token in %s", ok)
	}
	for _, body := range []string{
		`{"query":` + q + `}`,
		`{"query":{"measures":["quick_install.count"]}}`,
		`{"query":{"dimensions":["install.step"]}}`,
	} {
		direct, err := call(ctx, duck.CubeURL+"/cubejs-api/v1/load", withToken.Token, body)
		if err != nil {
			t.Fatal(err)
		}
		if direct.status != http.StatusBadRequest || !strings.Contains(string(direct.body), "not found for path") {
			t.Errorf("project 2 straight to Cube, %s: %s, want 400 not found", body, direct)
		}
	}
}

// TestDefinitionsApplyWithoutRestart: a new definition answers, and a
// deleted one stops, within 60 s (Cube reads a project's set every 30 s).
func TestDefinitionsApplyWithoutRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path := filepath.Join(funnelsDir, "1", "docs-then-install.yaml")
	def := "seconds_to_convert: 1800\nsteps:\n  - name: docs\n    action: pageview\n    target: /docs\n  - name: install\n    action: pageview\n    target: /install\n"
	if err := os.WriteFile(path, []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	// Both stacks read the same folder: each figure is from the write.
	written := time.Now()
	q := seed.Body(funnelQuery("docs_then_install", end.AddDate(0, 0, -29), end.Add(24*time.Hour-time.Millisecond)))
	for _, s := range []struct {
		name string
		s    *stack.Stack
	}{{"DuckDB", duck}, {"ClickHouse", click}} {
		t.Run(s.name, func(t *testing.T) {
			status := func() int {
				a, err := call(ctx, apiURL(s.s, withFunnels, "request/load"), token(withFunnels), q)
				if err != nil {
					return 0
				}
				return a.status
			}
			deadline, stop := context.WithDeadline(ctx, written.Add(60*time.Second))
			defer stop()
			if err := wait.For(deadline, "the new funnel to answer", func() bool { return status() == http.StatusOK }); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: the new funnel answered %s after its file was written", s.name, time.Since(written).Round(time.Second))
		})
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	for _, s := range []struct {
		name string
		s    *stack.Stack
	}{{"DuckDB", duck}, {"ClickHouse", click}} {
		t.Run(s.name+" deleted", func(t *testing.T) {
			deadline, stop := context.WithDeadline(ctx, removed.Add(60*time.Second))
			defer stop()
			err := wait.For(deadline, "the deleted funnel to stop answering", func() bool {
				a, err := call(ctx, apiURL(s.s, withFunnels, "request/load"), token(withFunnels), q)
				return err == nil && a.status == http.StatusBadRequest
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: the deleted funnel stopped %s after its file was removed", s.name, time.Since(removed).Round(time.Second))
		})
	}
}

// TestListing: the API lists a project's funnels in GitLab's shape, and
// none of another project's.
func TestListing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type listed struct {
		Name  string   `json:"name"`
		SQL   string   `json:"sql"`
		Steps []string `json:"steps"`
	}
	list := func(project int64) []listed {
		t.Helper()
		a, err := call(ctx, apiURL(duck, project, "funnels"), token(project), "")
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("listing project %d: %v %s", project, err, a)
		}
		var out []listed
		if err := json.Unmarshal(a.body, &out); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		return out
	}
	one := list(withFunnels)
	var names []string
	for _, f := range one {
		names = append(names, f.Name)
		if f.Name == "install_with_docker" && (!strings.Contains(f.SQL, "windowFunnel(600, 'strict_order')") ||
			strings.Join(f.Steps, "|") != "page_urlpath = '/'|page_urlpath = '/install'|page_urlpath = '/install/docker'") {
			t.Errorf("listed %+v", f)
		}
	}
	if !slices.Equal(names, []string{"install", "install_with_docker", "quick_install"}) {
		t.Errorf("project 1 lists %v", names)
	}
	for _, f := range list(withoutFunnels) {
		if slices.Contains(names, f.Name) {
			t.Errorf("project 2 lists project 1's %s", f.Name)
		}
	}
	a, err := call(ctx, apiURL(duck, withFunnels, "funnels"), token(withoutFunnels), "")
	if err != nil || a.status != http.StatusNotFound {
		t.Errorf("project 1's listing with project 2's token: %v %s", err, a)
	}
}

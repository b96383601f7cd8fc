package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/internal/web"
)

// demoFunnels returns the names of project's demo funnels: each file's
// base name, as GitLab names a funnel (the demo's are already
// parameterized).
func demoFunnels(t *testing.T, project int64) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(stack.DemoFunnels), fmt.Sprint(project)))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yml" || ext == ".yaml") {
			names = append(names, strings.TrimSuffix(e.Name(), ext))
		}
	}
	slices.Sort(names)
	return names
}

// shownFunnels reads each funnel panel as the page shows it: its title,
// state and text, the bars ECharts draws and the steps' table.
const shownFunnels = `[...document.querySelectorAll('.panel[data-visualization="Funnel"]')].map((p) => {
  const about = p.querySelector('.about');
  const out = { funnel: p.dataset.funnel, title: p.querySelector('h3').textContent, about: about ? about.textContent : '',
    state: p.dataset.state,
    status: p.dataset.status || '', text: p.querySelector('.body').textContent,
    inSection: p.closest('section') ? p.closest('section').id : '', elements: p.querySelectorAll('*').length,
    foreign: p.querySelectorAll('img, script, iframe, object, [onerror]').length };
  const chart = p.querySelector('.chart');
  if (chart) {
    const o = echarts.getInstanceByDom(chart).getOption();
    out.x = o.xAxis[0].data;
    out.series = o.series.map((s) => s.data);
  }
  const table = p.querySelector('table');
  if (table) out.rows = [...table.tBodies[0].rows].map((r) => [...r.cells].map((c) => c.textContent));
  return out;
})`

// shownFunnel is one funnel panel as the page shows it.
type shownFunnel struct {
	Funnel    string
	Title     string
	About     string
	State     string
	Status    string
	Text      string
	InSection string
	Foreign   int
	X         []string
	Series    [][]float64
	Rows      [][]string
}

func (tb *tab) funnels(t *testing.T) map[string]shownFunnel {
	t.Helper()
	list, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]shownFunnel](shownFunnels))
	if err != nil {
		t.Fatalf("reading the funnel panels: %v", err)
	}
	out := map[string]shownFunnel{}
	for _, f := range list {
		out[f.Funnel] = f
	}
	return out
}

// funnelQuery is the load the page sends for a funnel over the last days
// up to now, as GitLab's frontend sends it.
func funnelQuery(name string, now time.Time, days int) json.RawMessage {
	now = now.UTC()
	q, _ := json.Marshal(map[string]any{
		"measures":   []string{name + ".count"},
		"dimensions": []string{name + ".step"},
		"filters": []map[string]any{{"member": name + ".date", "operator": "inDateRange",
			"values": []string{now.AddDate(0, 0, -days).Format(time.DateOnly), now.Format(time.DateOnly)}}},
	})
	return q
}

// metaFunnels returns the funnel cubes the API's meta lists for project,
// failing the test when the API does not answer it.
func metaFunnels(t *testing.T, project int64) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := listedFunnels(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// listedFunnels returns the names of the funnel cubes the API's meta lists
// for project, sorted.
func listedFunnels(ctx context.Context, project int64) ([]string, error) {
	cubes, err := funnelCubes(ctx, project)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(cubes))
	return names, nil
}

// funnelCubes returns the funnel cubes the API's meta lists for project,
// each with its description: the cubes but GitLab's own that have count,
// step and date, as the page finds them.
func funnelCubes(ctx context.Context, project int64) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v4/projects/%d/product_analytics/request/meta", env.APIURL, project), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+stack.Token(time.Minute, project))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the API's meta: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the API's meta for project %d: %d %s %v", project, resp.StatusCode, body, err)
	}
	var meta struct {
		Cubes []struct {
			Name, Description string
			Measures          []struct{ Name, Type string }
			Dimensions        []struct{ Name, Type string }
		}
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return nil, fmt.Errorf("the API's meta: %w: %s", err, body)
	}
	cubes := map[string]string{}
	for _, c := range meta.Cubes {
		if slices.Contains([]string{"TrackedEvents", "Sessions", "ReturningUsers"}, c.Name) {
			continue
		}
		members := map[string]string{}
		for _, m := range append(c.Measures, c.Dimensions...) {
			members[m.Name] = m.Type
		}
		if members[c.Name+".count"] == "number" && members[c.Name+".step"] == "number" && members[c.Name+".date"] == "time" {
			cubes[c.Name] = c.Description
		}
	}
	return cubes, nil
}

// funnelStep is one row of a funnel's answer.
type funnelStep struct {
	step, users float64
}

// funnelSteps reads the API's answer to a funnel's load, in step order.
func funnelSteps(t *testing.T, name string, rows []map[string]any) []funnelStep {
	t.Helper()
	var steps []funnelStep
	for i, r := range rows {
		step, ok1 := number(r[name+".step"])
		users, ok2 := number(r[name+".count"])
		if !ok1 || !ok2 {
			t.Fatalf("row %d of %s's answer is not a step and a count: %v", i, name, r)
		}
		steps = append(steps, funnelStep{step, users})
	}
	slices.SortFunc(steps, func(a, b funnelStep) int { return int(a.step - b.step) })
	return steps
}

// TestFunnels opens the page on a project with the demo funnel and on one
// without, and checks the Funnels section against the API: the loads sent
// as GitLab's frontend sends them (30 and 90 days), each step's users as
// the API counts them, each step's conversion from the first.
func TestFunnels(t *testing.T) {
	want := demoFunnels(t, 1)
	if len(want) == 0 {
		t.Fatalf("no demo funnel for project 1 in %s", stack.DemoFunnels)
	}
	if got := metaFunnels(t, 1); !slices.Equal(got, want) {
		t.Fatalf("the API's meta lists the funnels %q for project 1; the demo has %q", got, want)
	}
	if got := metaFunnels(t, 2); len(got) != 0 {
		t.Fatalf("the API's meta lists the funnels %q for project 2, which has none", got)
	}

	tb := openTab(t)
	v := view{project: 1, days: 30}
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(env.APIURL+"/"+v.hash())); err != nil {
		t.Fatal(err)
	}
	tb.waitDrawn(t, v)
	checkFunnels(t, tb, v, want, true)
	tb.screenshot(t, "#funnels", "funnels.png")

	// 90 days rather than 7: project 1 over 7 days is TestDashboards' first
	// drawing, which must find Cube's cache without its slow panel.
	t.Run("date range 90 days", func(t *testing.T) {
		tb.choose(t, "range", "90")
		v := view{project: 1, days: 90}
		tb.waitDrawn(t, v)
		checkFunnels(t, tb, v, want, false)
	})

	t.Run("a project without funnels", func(t *testing.T) {
		tb.choose(t, "project", "2")
		tb.waitDrawn(t, view{project: 2, days: 90})
		got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`[
		  document.querySelectorAll('#funnels').length,
		  document.querySelectorAll('.panel[data-visualization="Funnel"]').length,
		  document.querySelectorAll('#nav a[href="#funnels"]').length,
		  document.querySelectorAll('.dashboard').length].join(' ')`))
		if err != nil {
			t.Fatal(err)
		}
		// GitLab's dashboards and the test-only slow one, and nothing else.
		if want := fmt.Sprintf("0 0 0 %d", len(web.Dashboards())+1); got != want {
			t.Errorf("funnel sections, funnel panels, funnel links, dashboards: %s; want %s", got, want)
		}
		// The meta was read, and listed no funnel.
		status, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		if strings.Contains(status, "funnels") {
			t.Errorf("the status says %q; want the project's funnels listed, none", status)
		}
	})
}

// checkFunnels checks that the page shows exactly the funnels want in its
// Funnels section, each drawn from the load GitLab's frontend sends and
// showing what the API answers to it. demo says the answer must show some
// users converting and some not, as the demo funnel does over 30 days.
func checkFunnels(t *testing.T, tb *tab, v view, want []string, demo bool) {
	t.Helper()
	shown := tb.funnels(t)
	names := make([]string, 0, len(shown))
	for name := range shown {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("the page shows the funnels %q; the project has %q", names, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cubes, err := funnelCubes(ctx, v.project)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sent := tb.sent()
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			got := shown[name]
			if got.InSection != "funnels" {
				t.Errorf("drawn in the section %q, want the Funnels section", got.InSection)
			}
			// What the steps are, as the meta describes them.
			if got.About != cubes[name] {
				t.Errorf("says %q about the funnel; the meta describes it as %q", got.About, cubes[name])
			}
			var query json.RawMessage
			// The page dates the query on its own clock; around midnight
			// (UTC) the test's day may already be the next one.
			for _, at := range []time.Time{now.Add(-time.Minute), now} {
				if q := funnelQuery(name, at, v.days); wasSent(sent, v.project, q) {
					query = q
				}
			}
			if query == nil {
				t.Fatalf("the page did not send %s", funnelQuery(name, now, v.days))
			}
			if got.State != "done" {
				t.Fatalf("not drawn: %+v", got)
			}
			status, body := apiLoad(t, v.project, query)
			if status != http.StatusOK {
				t.Fatalf("the API answers %d %s", status, body)
			}
			steps := funnelSteps(t, name, apiRows(t, body))
			if demo {
				// The demo funnel's point: some users go through every step,
				// and some stop before the last.
				if len(steps) < 2 || steps[len(steps)-1].users <= 0 || steps[len(steps)-1].users >= steps[0].users {
					t.Fatalf("the API answers %v for the demo funnel: want users at the last step, fewer than at the first", steps)
				}
			}
			compareFunnel(t, got, steps)
		})
	}
}

// compareFunnel checks a funnel's drawing against the API's steps: one bar
// per step with its users, and a table of each step's users and its
// conversion from the first, in percent.
func compareFunnel(t *testing.T, got shownFunnel, steps []funnelStep) {
	t.Helper()
	if len(steps) == 0 || steps[0].users == 0 {
		if got.Text != "No users reached the first step in this date range" {
			t.Errorf("the API answers %v, the page shows %q", steps, got.Text)
		}
		return
	}
	if len(got.X) != len(steps) || len(got.Series) != 1 || len(got.Series[0]) != len(steps) || len(got.Rows) != len(steps) {
		t.Fatalf("draws %d bars (%v, %v) and %d rows; the API answers %d steps: %v", len(got.X), got.X, got.Series, len(got.Rows), len(steps), steps)
	}
	for i, s := range steps {
		label := fmt.Sprintf("Step %g", s.step)
		if got.X[i] != label || got.Series[0][i] != s.users {
			t.Errorf("bar %d: %s = %v, the API answers %s = %v", i, got.X[i], got.Series[0][i], label, s.users)
		}
		row := got.Rows[i]
		if len(row) != 3 || row[0] != label || shownNumber(t, row[1]) != s.users {
			t.Errorf("row %d shows %q; the API answers %s with %v users", i, row, label, s.users)
			continue
		}
		conversion := 100 * s.users / steps[0].users
		shownPercent, ok := strings.CutSuffix(row[2], "%")
		if !ok || math.Abs(shownNumber(t, shownPercent)-conversion) > 0.05+1e-9 {
			t.Errorf("row %d: conversion %q, the API's counts make it %.3f%%", i, row[2], conversion)
		}
	}
}

// TestFunnelPanelGuards checks a funnel panel's behaviour when what it is
// given goes wrong: a refused load shows the API's message in the panel,
// as other panels do, and a funnel's title and description (tenant input)
// are shown as text, never read as HTML. The browser rewrites the page's
// requests and the API's answers on their way, so that the real API
// refuses the load.
func TestFunnelPanelGuards(t *testing.T) {
	names := demoFunnels(t, 1)
	if len(names) == 0 {
		t.Fatalf("no demo funnel for project 1 in %s", stack.DemoFunnels)
	}
	name := names[0]
	const hostile = `<img src=x onerror="document.title='xss'"><b>Install</b>`
	// Asked for a member project 1 does not have: the API's own refusal.
	unknown := name + ".no_such_member"

	tb := openTab(t)
	paused := chromedp.Events(tb.ctx, fetch.RequestPaused)
	rewritten := make(chan string, 16)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return // the tab was closed
			}
			rewrite(tb, ev, name, hostile, unknown, rewritten)
		}
	}()
	if _, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/product_analytics/request/load", RequestStage: fetch.RequestStageRequest},
		{URLPattern: "*/product_analytics/request/meta", RequestStage: fetch.RequestStageResponse},
	}}); err != nil {
		t.Fatalf("intercepting the page's requests: %v", err)
	}
	v := view{project: 1, days: 30}
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(env.APIURL+"/"+v.hash())); err != nil {
		t.Fatal(err)
	}
	tb.waitDrawn(t, v)

	var seen []string
	for len(rewritten) > 0 {
		seen = append(seen, <-rewritten)
	}
	if !slices.Contains(seen, "meta") || !slices.Contains(seen, "load") {
		t.Fatalf("rewrote %q; want the meta's answer and the funnel's load", seen)
	}
	got := tb.funnels(t)[name]
	tampered := strings.ReplaceAll(string(funnelQuery(name, time.Now(), v.days)), name+".step", unknown)
	status, body := apiLoad(t, v.project, json.RawMessage(tampered))
	var refusal struct{ Message string }
	if err := json.Unmarshal(body, &refusal); status != http.StatusBadRequest || err != nil || refusal.Message == "" {
		t.Fatalf("the API answers %d %s to the rewritten load; the test expects a 400 with a message", status, body)
	}
	if got.State != "error" || got.Text != refusal.Message || got.Status != "400" {
		t.Errorf("the refused funnel shows %s %q (HTTP %s); want the API's message %q", got.State, got.Text, got.Status, refusal.Message)
	}
	if got.Title != hostile || got.About != hostile || got.Foreign != 0 {
		t.Errorf("the title and description %q are shown as %q and %q with %d elements made from them; want them as text",
			hostile, got.Title, got.About, got.Foreign)
	}
	title, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.title`))
	if title == "xss" {
		t.Error("the funnel's title ran as script")
	}
	for other, p := range tb.panels(t) {
		if !strings.HasPrefix(other, "funnel:") && p.State != "done" {
			t.Errorf("%s: %s %q; the other panels are drawn as usual", other, p.State, p.Text)
		}
	}
	tb.screenshot(t, "#funnels", "funnel-refused.png")
}

// rewrite lets a paused request of the page go on: a funnel load asks for
// a member the project lacks instead of its step, and the meta's answer
// gives the funnel a hostile title and description. Everything else goes
// on unchanged. It reports what it rewrote on done.
func rewrite(tb *tab, ev fetch.EventRequestPaused, name, title, unknown string, done chan<- string) {
	goOn := func() {
		chromedp.Call(tb.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	}
	switch {
	case ev.ResponseStatusCode != 0: // the meta's answer
		res, err := chromedp.Call(tb.ctx, fetch.GetResponseBody, fetch.GetResponseBodyParams{RequestID: ev.RequestID})
		if err != nil || ev.ResponseStatusCode != http.StatusOK {
			chromedp.Call(tb.ctx, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: ev.RequestID})
			return
		}
		var meta map[string]any
		if json.Unmarshal(res.Body, &meta) != nil {
			chromedp.Call(tb.ctx, fetch.ContinueResponse, fetch.ContinueResponseParams{RequestID: ev.RequestID})
			return
		}
		cubes, _ := meta["cubes"].([]any)
		for _, c := range cubes {
			if c, ok := c.(map[string]any); ok && c["name"] == name {
				c["title"], c["description"] = title, title
			}
		}
		body, _ := json.Marshal(meta)
		// The body is given decoded and whole: the answer's own encoding
		// and length no longer hold.
		var headers []*fetch.HeaderEntry
		for _, h := range ev.ResponseHeaders {
			if n := strings.ToLower(h.Name); n != "content-encoding" && n != "content-length" {
				headers = append(headers, h)
			}
		}
		chromedp.Call(tb.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: ev.ResponseStatusCode,
			ResponseHeaders: headers, Body: body})
		report(done, "meta")
	default:
		var post strings.Builder
		for _, e := range ev.Request.PostDataEntries {
			post.Write(e.Bytes)
		}
		if !strings.Contains(post.String(), `"`+name+`.step"`) {
			goOn()
			return
		}
		chromedp.Call(tb.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID,
			PostData: []byte(strings.ReplaceAll(post.String(), `"`+name+`.step"`, `"`+unknown+`"`))})
		report(done, "load")
	}
}

// report tells what was rewritten without ever blocking the rewriting.
func report(done chan<- string, what string) {
	select {
	case done <- what:
	default:
	}
}

// TestFunnelWrittenWhileRunning writes a funnel for project 2, which has
// none, while the stack runs: once the API lists it, the page opened anew
// shows a Funnels section with it, and, since no user ever reaches its
// first step, says so instead of drawing empty bars. Once the definition is
// deleted, the page opened anew has no Funnels section again.
func TestFunnelWrittenWhileRunning(t *testing.T) {
	const name = "never_reached"
	v := view{project: 2, days: 30}
	dir := filepath.Join(funnelsDir, fmt.Sprint(v.project))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".yml")
	definition := "seconds_to_convert: 60\nsteps:\n" +
		"  - {name: nowhere, action: pageview, target: /no-such-page}\n" +
		"  - {name: home, action: pageview, target: /}\n"
	if err := os.WriteFile(path, []byte(definition), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(path)
		if err := waitFunnels(v.project, nil); err != nil {
			t.Errorf("project %d's funnel was deleted: %v", v.project, err)
		}
	})
	if err := waitFunnels(v.project, []string{name}); err != nil {
		t.Fatal(err)
	}
	query := funnelQuery(name, time.Now(), v.days)
	// The API reads the project's funnels on its own clock: its allow-list
	// may take a moment more than Cube's meta to let the new members through.
	var status int
	var body []byte
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := wait.For(ctx, "the API to answer the new funnel's load", func() bool {
		status, body = apiLoad(t, v.project, query)
		return status == http.StatusOK
	}); err != nil {
		t.Fatalf("%v: last answer %d %s", err, status, body)
	}
	if steps := funnelSteps(t, name, apiRows(t, body)); len(steps) > 0 && steps[0].users > 0 {
		t.Fatalf("the API answers %v for a funnel whose first page no one views", steps)
	}

	tb := openTab(t)
	if err := chromedp.Do(tb.ctx, chromedp.Navigate(env.APIURL+"/"+v.hash())); err != nil {
		t.Fatal(err)
	}
	tb.waitDrawn(t, v)
	shown := tb.funnels(t)
	if len(shown) != 1 || shown[name].State != "done" || shown[name].InSection != "funnels" {
		t.Fatalf("shows the funnels %+v; want %s alone, drawn in the Funnels section", shown, name)
	}
	compareFunnel(t, shown[name], nil)

	t.Run("deleted", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := waitFunnels(v.project, nil); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(tb.ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		tb.waitDrawn(t, v)
		if shown := tb.funnels(t); len(shown) != 0 {
			t.Errorf("still shows the funnels %+v after their definition was deleted", shown)
		}
		if n, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#funnels').length`)); n != 0 {
			t.Errorf("%d Funnels sections for a project without funnels", n)
		}
	})
}

// waitFunnels waits until the API's meta lists exactly the funnels want
// for project: Cube reads a project's funnels again every funnelsRefresh,
// and a change must apply within a minute.
func waitFunnels(project int64, want []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last []string
	err := wait.For(ctx, fmt.Sprintf("the API's meta to list the funnels %q for project %d", want, project), func() bool {
		var err error
		if last, err = listedFunnels(ctx, project); err != nil {
			return false
		}
		return slices.Equal(last, want)
	})
	if err != nil {
		return fmt.Errorf("%w (last listed: %q)", err, last)
	}
	return nil
}

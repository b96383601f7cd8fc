// Package browser tests the dashboards page in a real browser: headless
// Chromium, driven over the DevTools protocol, draws GitLab's dashboards
// from the local stack (the API, a real Cube over demo data) and the tests
// compare what it shows with what the API answers.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"productanalytics/internal/debian"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/internal/web"
)

// The stack's timings. The API stops asking Cube after apiWait and answers
// "Continue wait", which the page must show while its client asks again; the
// test-only slow panel takes slowQuery, longer than that, so every drawing
// shows it. apiWait stays well above Cube's continue-wait answer (1 s), so
// that a busy machine slows the ordinary panels without failing them.
const (
	cubeWait  = time.Second
	apiWait   = 3500 * time.Millisecond
	slowQuery = 5 * time.Second
	// funnelsRefresh is how long Cube and the API keep a project's funnels
	// before reading them again (30 s by default): short, so that a test
	// sees a funnel written or deleted while the stack runs without waiting
	// for the default.
	funnelsRefresh = 2 * time.Second
)

var (
	env *stack.Stack
	// staticHost is a static host for the exported page: another origin
	// than the API's, which the API allows (CORS) as a deployment with
	// CorsAllowOrigins would. It serves the folder in staticDir.
	staticHost net.Listener
	staticDir  atomic.Pointer[string]
	root       string
	browser    context.Context // the browser's context: a tab per test
	apiLogs    = &logcheck.Buffer{}
	shotsDir   string
	// funnelsDir is the stack's funnels folder, <dir>/<project id>/*.yml,
	// which Cube and the API read again while the stack runs.
	funnelsDir string
)

// slowDashboard is drawn beside GitLab's: one panel over the test-only
// SlowEvents cube, dated like the others.
var slowDashboard = web.Dashboard{
	Slug: "slow", Title: "Slow panel (test only)", Description: "A query Cube takes longer to answer than the API waits.",
	Panels: []web.Panel{{
		Name: "slow_events", Title: "Slow events", Visualization: web.SingleStat,
		Query: json.RawMessage(`{"measures":["SlowEvents.count"],"filters":[{"member":"SlowEvents.derivedTstamp","operator":"inDateRange","values":["{{from}}","{{to}}"]}],"limit":100,"timezone":"UTC"}`),
	}},
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	if root, err = stack.Root("."); err != nil {
		return fail(err)
	}
	chromium, err := installChromium(ctx)
	if err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "pa-browser-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	dataDir := filepath.Join(tmp, "events")
	// The demo funnels, as make run reads them: project 1 has one.
	funnelsDir = filepath.Join(tmp, "funnels")
	for _, step := range []func() error{
		func() error { return stack.InstallCube(ctx, root, os.Stderr) },
		func() error { return stack.InstallPage(ctx, root, os.Stderr) },
		func() error { return stack.GenerateData(ctx, root, dataDir, os.Stderr) },
		func() error { return stack.SeedFunnels(root, funnelsDir) },
	} {
		if err := step(); err != nil {
			return fail(err)
		}
	}
	if staticHost, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return fail(err)
	}
	host := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dir := staticDir.Load()
		if dir == nil {
			http.NotFound(w, r)
			return
		}
		http.FileServer(http.Dir(*dir)).ServeHTTP(w, r)
	})}
	go host.Serve(staticHost)
	defer host.Close()
	cubeLog := &logcheck.Buffer{}
	env, err = stack.Start(ctx, stack.Options{
		CORSAllowOrigins: []string{"http://" + staticHost.Addr().String()},
		Root:             root, DataDir: dataDir, ContinueWait: cubeWait, TestModel: true, SlowQuery: slowQuery,
		Env: map[string]string{"CUBE_WAIT_DEADLINE": apiWait.String(), "CUBE_REQUEST_TIMEOUT": apiWait.String(),
			"FUNNELS_TTL": funnelsRefresh.String()},
		FunnelsDir: funnelsDir,
		CubeEnv:    []string{fmt.Sprintf("CUBE_FUNNELS_REFRESH=%d", int(funnelsRefresh/time.Second))},
		Dashboards: append(web.Dashboards(), slowDashboard),
		Log:        apiLogs, CubeLog: cubeLog,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, cubeLog.String())
		return fail(err)
	}
	defer env.Close()

	// Cube compiles its data model (one for every project) on its first
	// request, which on a busy machine can outlast the API's short wait and
	// fail that request: have it compiled, and each project answering,
	// before the page is drawn.
	for _, project := range []int64{1, 2} {
		if err := compiled(ctx, project); err != nil {
			return fail(err)
		}
	}

	shotsDir = filepath.Join(root, ".local", "screenshots")
	if err := os.MkdirAll(shotsDir, 0o755); err != nil {
		return fail(err)
	}
	allocCtx, stopAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(filepath.Join(tmp, "chromium")), // fresh: no state from earlier runs
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Chromium's own connections (updates, sync, QUIC probes) would be
		// refused by this closed network and slow every page down.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	)
	defer stopAlloc()
	var stopBrowser context.CancelFunc
	browser, stopBrowser = chromedp.NewContext(allocCtx)
	defer stopBrowser()
	// The first action on a context starts the browser and binds its life
	// to that context: it must be browser itself, without a deadline, or
	// Chromium stops when the deadline passes, in the middle of the suite.
	if err := chromedp.Do(browser); err != nil {
		return fail(fmt.Errorf("starting %s: %w", chromium, err))
	}
	startCtx, cancelStart := context.WithTimeout(browser, time.Minute)
	defer cancelStart()
	if err := chromedp.Do(startCtx, chromedp.Navigate("about:blank")); err != nil {
		return fail(fmt.Errorf("opening a blank page in %s: %w", chromium, err))
	}

	code := m.Run()
	if code == 0 {
		if err := logcheck.Leak(apiLogs.String()+cubeLog.String(), stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
			return fail(err)
		}
	}
	return code
}

// compiled waits until the API answers meta for project: Cube has compiled
// its data model.
func compiled(ctx context.Context, project int64) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	url := fmt.Sprintf("%s/api/v4/projects/%d/product_analytics/request/meta", env.APIURL, project)
	var last string
	err := wait.For(ctx, fmt.Sprintf("Cube to compile project %d's data model (the API's meta)", project), func() bool {
		if ctx.Err() != nil {
			return false // keeps the last answer for the error
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			last = err.Error()
			return false
		}
		req.Header.Set("Authorization", "Bearer "+stack.Token(time.Minute, project))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		return fmt.Errorf("%w (last answer: %s)", err, last)
	}
	return nil
}

// installChromium returns Chromium's path, installing Debian's package
// first when it is missing (as root; apt waits for another install's lock).
func installChromium(ctx context.Context) (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	if err := debian.Install(ctx, "chromium", "about half a minute", os.Stderr); err != nil {
		return "", err
	}
	return exec.LookPath("chromium")
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "browser:", err)
	return 1
}

// Package cubefront tests what a tenant holding a Cube token can do to the
// local Cube by sending requests straight to it, as the API's include_token
// allows: only the routes clients need are served, no request of any route,
// method, body or header ends Cube, no answer carries a stack or a path, a
// request costs Cube's log a bounded amount, and one project's requests in
// flight are bounded while another's are answered. All on one real Cube
// started through internal/stack.
package cubefront

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
)

// The test Cube's bounds of a project's requests (cube/front.js): two in
// flight, one more waiting for a second before it is told to continue
// waiting (a load) or refused (429); more than that refused at once.
const (
	maxInFlight = 2
	maxQueued   = 1
	queueWait   = time.Second
	// slowQuery is how long a SlowEvents query takes: longer than any
	// hold the tests need, so that a held request is not answered from
	// Cube's cache before the test is done with it.
	slowQuery = 15 * time.Second
	// maxLargeAnswers is how many loads of more than 50,000 cells (the
	// default CUBE_LARGE_ANSWER_CELLS) Cube builds at once, all projects
	// together.
	maxLargeAnswers = 1
)

var (
	env     *stack.Stack
	root    string
	cubeLog = &logcheck.Buffer{}
	// cubePID is Cube's process when the tests start; no test may change it.
	cubePID int
	client  = &http.Client{Timeout: 2 * time.Minute}
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
	tmp, dataDir, err := stack.TestData(ctx, root, "pa-cubefront-", os.Stderr, "-projects", "1:2000,2:1000")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	env, err = stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, TestModel: true, SlowQuery: slowQuery, CubeLog: cubeLog,
		CubeEnv: []string{
			fmt.Sprintf("CUBE_TENANT_MAX_IN_FLIGHT=%d", maxInFlight),
			fmt.Sprintf("CUBE_TENANT_MAX_QUEUED=%d", maxQueued),
			fmt.Sprintf("CUBE_TENANT_QUEUE_WAIT=%d", int(queueWait/time.Second)),
			fmt.Sprintf("CUBE_MAX_LARGE_ANSWERS=%d", maxLargeAnswers),
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, logcheck.LastLines(cubeLog.String(), 20))
		return fail(err)
	}
	cubePID = env.CubePID()
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		code = 1
	}
	if code == 0 {
		if err := logcheck.Leak(cubeLog.String(), stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
			code = fail(err)
		}
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "cubefront:", err)
	return 1
}

// token is a Cube token for project, as the API mints it and include_token
// hands it out.
func token(tb testing.TB, project int64) string {
	tb.Helper()
	tok, err := cube.MintToken(stack.LocalCubeKey, project, "cubefront-test", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// answer is what Cube answered.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send sends one request straight to the tests' Cube; path may carry a
// query string.
func send(ctx context.Context, method, path string, body []byte, header map[string]string) (answer, error) {
	return sendTo(ctx, env.CubeURL, method, path, body, header)
}

// sendTo sends one request straight to the Cube at base.
func sendTo(ctx context.Context, base, method, path string, body []byte, header map[string]string) (answer, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return answer{}, fmt.Errorf("building %s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %.80s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("reading the answer to %s %.80s: %w", method, path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// mustSend is send, failing the test on a transport error.
func mustSend(t *testing.T, method, path string, body []byte, header map[string]string) answer {
	t.Helper()
	a, err := send(context.Background(), method, path, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// withToken is the headers of a JSON request with project's token.
func withToken(tb testing.TB, project int64) map[string]string {
	return map[string]string{"Authorization": token(tb, project), "Content-Type": "application/json"}
}

// frame is a line of a JavaScript stack trace.
var frame = regexp.MustCompile(`\n\s+at |\(/[^)]*:[0-9]+:[0-9]+\)`)

// internals returns what, in body, only the server should see: a stack, a
// stack frame, or a path of Cube's install; "" when there is none.
func internals(body []byte) string {
	s := string(body)
	switch {
	case strings.Contains(s, `"stack"`):
		return `a "stack" field`
	case frame.MatchString(s):
		return "a stack frame"
	case strings.Contains(s, "node_modules"):
		return "a node_modules path"
	case strings.Contains(s, root):
		return "the project's folder"
	case strings.Contains(s, os.TempDir()+"/"):
		return "a temporary folder's path"
	}
	return ""
}

// cubeUp fails the test unless the Cube the tests started still runs and
// is ready.
func cubeUp(t *testing.T) {
	t.Helper()
	if err := alive(); err != nil {
		t.Fatal(err)
	}
}

// alive reports whether the Cube the tests started still runs, as the same
// process, and answers /readyz.
func alive() error {
	if pid := env.CubePID(); pid != cubePID {
		return fmt.Errorf("Cube's process changed from %d to %d: it exited and was started again; its log: %s",
			cubePID, pid, logcheck.LastLines(cubeLog.String(), 10))
	}
	if err := syscall.Kill(cubePID, 0); err != nil {
		return fmt.Errorf("Cube (pid %d) no longer runs: %w; its log: %s", cubePID, err, logcheck.LastLines(cubeLog.String(), 10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := send(ctx, http.MethodGet, "/readyz", nil, nil)
	if err != nil {
		return fmt.Errorf("Cube's /readyz: %w", err)
	}
	if a.status != http.StatusOK {
		return fmt.Errorf("Cube's /readyz answered %d %.200s", a.status, a.body)
	}
	return nil
}

// logLines returns Cube's log lines whose text holds all of parts.
func logLines(parts ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(cubeLog.String()))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
scan:
	for sc.Scan() {
		for _, p := range parts {
			if !strings.Contains(sc.Text(), p) {
				continue scan
			}
		}
		out = append(out, sc.Text())
	}
	return out
}

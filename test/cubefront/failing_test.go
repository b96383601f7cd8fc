package cubefront

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/child"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// TestFailingHandlers runs cube/front.js around routes that fail as Cube's
// can (testdata/failing.js): a handler that rejects, one that throws, errors
// thrown and rejected on their own. No client route of Cube fails so today,
// which is why they are made to here. Each request is answered 500 without
// a stack, the process goes on, and an error answer loses its stack and its
// paths.
func TestFailingHandlers(t *testing.T) {
	log := &logcheck.Buffer{}
	cmd := exec.Command("node", filepath.Join("testdata", "failing.js"), stack.CubeDir(root))
	p, err := child.Start(cmd, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := p.WaitOutput(ctx, regexp.MustCompile(`listening on ([0-9]+)`))
	if err != nil {
		t.Fatalf("%v: %s", err, logcheck.LastLines(log.String(), 10))
	}
	base := "http://127.0.0.1:" + m[1]
	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/cubejs-api/v1/load?fail=reject", 500, `{"error":"Internal Server Error"}`},
		{"/cubejs-api/v1/load?fail=throw", 500, `{"error":"Internal Server Error"}`},
		{"/cubejs-api/v1/load?fail=later", 200, `{"ok":true}`},
		{"/cubejs-api/v1/load", 200, `{"ok":true}`},
		{"/cubejs-api/v1/meta", 400, `{"error":"Error: cannot open <path>"}`},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			a, err := sendTo(ctx, base, http.MethodGet, c.path, nil, nil)
			if err != nil {
				t.Fatalf("%v; the process's log: %s", err, logcheck.LastLines(log.String(), 10))
			}
			if a.status != c.status || string(a.body) != c.body {
				t.Errorf("answer %d %s; want %d %s", a.status, a.body, c.status, c.body)
			}
		})
	}
	// The errors that no request caught were logged, and the process lives.
	select {
	case <-p.Exited():
		t.Fatalf("the process exited: %s", logcheck.LastLines(log.String(), 10))
	default:
	}
	for _, want := range []string{"thrown on its own", "rejected on its own"} {
		wait.Until(t, "the log to name the error "+want, func() bool { return strings.Contains(log.String(), want) })
	}
	a, err := sendTo(ctx, base, http.MethodGet, "/cubejs-api/v1/load", nil, nil)
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("after the errors: %v %d %s", err, a.status, a.body)
	}
}

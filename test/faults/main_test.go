// Package faults tests what callers get when the real parts behind the API
// fail while traffic flows, on the real local stack: Cube killed, Cube
// frozen, Secrets Manager killed, the Cube key rotated; for the local
// server and for the Lambda bootstrap under the runtime interface emulator.
// Each fault is undone the way an operator would (the part restarted on its
// address), and the same API process must serve again by itself. It also
// sends the local server slow and oversized requests. Timeouts and cache
// periods are short, through the API's configuration, so that each case
// takes seconds.
package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/rie"
	"productanalytics/internal/stack"
)

// The API's bounds in these tests.
const (
	requestTimeout = 4 * time.Second  // one exchange with Cube
	waitDeadline   = 20 * time.Second // a whole call
	// The stale window is much longer than the TTL, so that serving stale
	// keys shows apart from merely serving cached ones.
	secretTTL      = 1 * time.Second
	secretStaleFor = 6 * time.Second
)

// apiEnv is the configuration of the stack's API and of the functions.
func apiEnv() map[string]string {
	return map[string]string{
		"CUBE_REQUEST_TIMEOUT": requestTimeout.String(),
		"CUBE_WAIT_DEADLINE":   waitDeadline.String(),
		"SECRET_CACHE_TTL":     secretTTL.String(),
		"SECRET_STALE_FOR":     secretStaleFor.String(),
	}
}

var (
	env       *stack.Stack
	root      string
	bootstrap string // the load function, built for this machine
	apiLogs   = &logcheck.Buffer{}
	cubeLog   = &logcheck.Buffer{}
	// keys are every Cube key the stack has had; none may reach a log.
	keys = []string{stack.LocalCubeKey, stack.LocalCallerKey}
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
	tmp, dataDir, err := stack.TestData(ctx, root, "pa-faults-", os.Stderr, "-projects", "1:5000,2:1000")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	os.MkdirAll(filepath.Join(tmp, "load"), 0o755)
	if bootstrap, err = rie.BuildBootstrap(ctx, root, "./functions/load", filepath.Join(tmp, "load")); err != nil {
		return fail(err)
	}
	// Cube answers "Continue wait" well within the request timeout, so that
	// a slow first query after a restart (the model compiling on a busy
	// machine) is polled for rather than taken for a hung Cube.
	env, err = stack.Start(ctx, stack.Options{Root: root, DataDir: dataDir, ContinueWait: time.Second, Env: apiEnv(), Log: apiLogs, CubeLog: cubeLog})
	if err != nil {
		fmt.Fprintln(os.Stderr, cubeLog.String())
		return fail(err)
	}
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		code = 1
	}
	if code == 0 {
		if err := logcheck.Leak(apiLogs.String()+cubeLog.String(), keys...); err != nil {
			code = fail(err)
		}
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "faults:", err)
	return 1
}

package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"productanalytics/internal/child"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/motoserver"
)

// CubeHeapMB bounds Cube's V8 heap. Node sizes the heap to the machine
// (4 GB on 24 GB) and lets it grow to several times what is live before
// collecting: over a ten-minute soak Cube's resident memory went from 340
// to 650 MB while its live heap stayed at 81 MB. Bounded, it collects
// instead. 512 MB holds what the cost budget lets through: the largest
// allowed answer (50,000 rows of 12 columns) needs 198 MB of heap on its
// own (test/guard's BenchmarkCubeHeap), Cube builds at most two such at
// once (CUBE_MAX_LARGE_ANSWERS), and the result cache takes a fifth of the
// heap. NODE_OPTIONS=--max-old-space-size=N overrides it.
const CubeHeapMB = 512

// listeningLine is what cube/server.js prints once it has bound its port.
var listeningLine = regexp.MustCompile(`cube listening on [0-9a-fA-F.:]+:([0-9]+)`)

// CubeRefusal runs cube/server.js under root with the local API secret
// and env as its only settings of Cube's own (the caller's CUBE_ and
// CUBEJS_ variables are dropped, so that they cannot change the outcome),
// and returns what it printed on refusing to start. It is an error if Cube
// listens, exits without an error, or is still running after 30 s.
func CubeRefusal(ctx context.Context, root string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "server.js")
	cmd.Dir = CubeDir(root)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUBE_") && !strings.HasPrefix(kv, "CUBEJS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CUBEJS_API_SECRET="+LocalCubeKey, "CUBE_PORT=0")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	switch {
	case listeningLine.Match(out):
		return string(out), errors.New("the local Cube started")
	case ctx.Err() != nil:
		return string(out), errors.New("the local Cube did not exit within 30 s")
	case err == nil:
		return string(out), errors.New("the local Cube exited without an error")
	}
	return string(out), nil
}

// startCube runs cube/server.js on port (0: a free port it picks and
// prints, so that no other process can take it between a probe and the
// bind) with key as its API secret, and waits until it is ready. It
// returns Cube's address.
func startCube(ctx context.Context, o Options, port int, key string) (*child.Process, string, error) {
	cmd := exec.Command("node", "server.js")
	cmd.Dir = CubeDir(o.Root)
	data, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, "", err
	}
	env := append(os.Environ(),
		"CUBEJS_API_SECRET="+key,
		"CUBE_DATA_DIR="+data,
		"CUBE_PORT="+strconv.Itoa(port),
		"CUBE_HOST="+o.host(),
		"CUBE_CONTINUE_WAIT_TIMEOUT="+strconv.Itoa(max(1, int(o.ContinueWait/time.Second))),
	)
	// Set either way, so that the caller's environment cannot switch the
	// store.
	store, err := storeEnv(o.ClickHouse)
	if err != nil {
		return nil, "", err
	}
	env = append(env, store...)
	// Set either way, so that the caller's environment cannot turn the test
	// model on or the guard off.
	testModel, guard := "0", "on"
	if o.TestModel {
		testModel = "1"
		env = append(env, "CUBE_TEST_SLOW_MS="+strconv.FormatInt(o.SlowQuery.Milliseconds(), 10))
	}
	if o.WithoutQueryGuard {
		guard = "off"
	}
	env = append(env, "CUBE_TEST_MODEL="+testModel, "CUBE_QUERY_GUARD="+guard,
		// The developer's own NODE_OPTIONS come after, and win.
		"NODE_OPTIONS="+strings.TrimSpace(fmt.Sprintf("--max-old-space-size=%d %s", CubeHeapMB, os.Getenv("NODE_OPTIONS"))))
	if o.FunnelsDir != "" {
		// Absolute: Cube runs in cube/ and would read a relative one there.
		funnels, err := filepath.Abs(o.FunnelsDir)
		if err != nil {
			return nil, "", fmt.Errorf("the funnels folder: %w", err)
		}
		env = append(env, "CUBE_FUNNELS_DIR="+funnels)
	}
	cmd.Env = append(env, o.CubeEnv...)
	var log io.Writer = o.CubeLog
	if o.Cubes > 1 {
		log = &lineWriter{w: o.CubeLog}
	}
	p, err := child.Start(cmd, log)
	if err != nil {
		return nil, "", fmt.Errorf("starting Cube (node cube/server.js): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var addr string
	m, err := p.WaitOutput(ctx, listeningLine)
	if err == nil {
		addr = net.JoinHostPort(motoserver.ConnectHost(o.host()), m[1])
		err = p.WaitReady(ctx, 20*time.Millisecond, child.HTTPOK("http://"+addr+"/readyz"))
	}
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, "", fmt.Errorf("the local Cube: %w (its log: %s)", err, logcheck.LastLines(p.Output(), 5))
	}
	return p, addr, nil
}

// storeEnv is the environment that picks Cube's store: the DuckDB files,
// or with ch a ClickHouse server.
func storeEnv(ch *ClickHouse) ([]string, error) {
	if ch == nil {
		return []string{"CUBE_DB_TYPE=duckdb"}, nil
	}
	u, err := url.Parse(ch.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("the ClickHouse URL %q is not http(s)://host[:port]", ch.URL)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "8123", "https": "8443"}[u.Scheme]
	}
	return []string{
		"CUBE_DB_TYPE=clickhouse",
		"CUBEJS_DB_HOST=" + u.Hostname(),
		"CUBEJS_DB_PORT=" + port,
		"CUBEJS_DB_SSL=" + strconv.FormatBool(u.Scheme == "https"),
		"CUBE_TENANT_DB_PASSWORD_KEY=" + ch.PasswordKey,
	}, nil
}

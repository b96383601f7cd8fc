// Package rie runs a Lambda function's bootstrap binary under the AWS Lambda
// runtime interface emulator (aws-lambda-rie), so that tests and benchmarks
// invoke the real binary through the real Lambda runtime API, as SAM's
// `sam local invoke` would, without Docker.
//
// The emulator starts the bootstrap on the first invoke, not at launch: the
// first Invoke's time to first byte is the function's cold start (process
// launch, init, and the invoke), later ones are warm invokes.
package rie

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/child"
)

// The emulator this package installs: the only version the module proxy of
// this project's machines serves.
const (
	Package = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	Version = "v0.0.0-20261030222936-bef5c4ba774d"
	Command = "aws-lambda-rie"
)

// InvokePath is where the emulator takes invocations, as Lambda's Invoke API.
const InvokePath = "/2015-03-31/functions/function/invocations"

// StartTimeout bounds how long Launch waits for the emulator to listen.
const StartTimeout = 10 * time.Second

// DefaultTimeout is the function timeout the emulator enforces unless
// Options.Timeout says otherwise; template.yaml sets the same.
const DefaultTimeout = 29 * time.Second

// Install makes sure the pinned emulator is in dir, installing it with
// `go install` when it is missing or another version, and returns its path.
func Install(ctx context.Context, dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, Command)
	if installed(path) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("installing %s needs the go command: %w", Command, err)
	}
	// Install into a scratch folder and rename: test binaries of several
	// packages may install at once, and none may see a half-written file.
	tmp, err := os.MkdirTemp(dir, ".install-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goTool, "install", Package+"@"+Version)
	cmd.Dir = tmp // outside any module, so that the project's go.mod plays no part
	// The emulator runs here, whatever the caller cross-compiles for.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOOS=", "GOARCH=", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", Package, Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, Command), path); err != nil {
		return "", err
	}
	if !installed(path) {
		return "", fmt.Errorf("%s: go install wrote a binary that is not %s@%s", path, Package, Version)
	}
	return path, nil
}

// installed reports whether path is the pinned emulator, built for this machine.
func installed(path string) bool {
	info, err := buildinfo.ReadFile(path)
	return err == nil && info.Path == Package && info.Main.Version == Version
}

// DefaultDir is where the emulator is installed unless told otherwise:
// .local/bin in the project's root (the nearest folder above the working
// directory holding go.mod), which git ignores.
func DefaultDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".local", "bin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("rie: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Options configure an Emulator.
type Options struct {
	// Bootstrap is the function's executable (built for this machine).
	Bootstrap string
	// Env is the function's whole environment, "KEY=value" entries as in
	// os.Environ. Nothing of the caller's environment is passed on: a
	// function sees what its template would give it and no more. The
	// emulator adds Lambda's own variables (AWS_LAMBDA_FUNCTION_NAME etc.).
	Env []string
	// FunctionName is AWS_LAMBDA_FUNCTION_NAME (default "function").
	FunctionName string
	// Timeout is the function timeout the emulator enforces, in whole
	// seconds (default DefaultTimeout).
	Timeout time.Duration
	// Emulator is the aws-lambda-rie executable; empty means Install into
	// DefaultDir.
	Emulator string
	// Output receives the emulator's and the function's output as it comes
	// (in addition to Emulator.Output).
	Output io.Writer
}

// EnvFromMap turns a map of variables (such as a stack's APIEnv) into
// Options.Env, sorted so that the order does not vary between runs.
func EnvFromMap(m map[string]string) []string {
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// Emulator is a running aws-lambda-rie with one function.
type Emulator struct {
	// URL is the emulator's base address, http://127.0.0.1:PORT.
	URL string
	// Launched is when the emulator's process was started, and Ready how
	// long it took from then until it accepted connections.
	Launched time.Time
	Ready    time.Duration

	proc   *child.Process
	client *http.Client
	mu     sync.Mutex // the emulator serves one invoke at a time
}

// Launch starts the emulator with the function on free ports of 127.0.0.1
// and returns once it accepts connections. The caller must Close it.
//
// Each emulator gets its own runtime API port (--runtime-api-address)
// instead of the fixed 127.0.0.1:9001, so that several can run at once.
func Launch(ctx context.Context, o Options) (*Emulator, error) {
	if o.Bootstrap == "" {
		return nil, errors.New("rie: Options.Bootstrap is required")
	}
	bootstrap, err := filepath.Abs(o.Bootstrap)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("rie: the bootstrap: %w", err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("rie: the bootstrap %s is not an executable file", bootstrap)
	}
	emulator := o.Emulator
	if emulator == "" {
		dir, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		if emulator, err = Install(ctx, dir); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	// Another process may take a port between our probe and the emulator
	// binding it; the emulator then exits at once, and other ports are tried.
	// (The emulator does not print the ports it binds, and hands a port 0
	// unresolved to the bootstrap, so free ports are probed for, and the
	// listener checked to be the emulator's own.)
	var lastErr error
	for range 3 {
		e, err := launch(ctx, emulator, bootstrap, o)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func launch(ctx context.Context, emulator, bootstrap string, o Options) (*Emulator, error) {
	ports, err := child.FreePorts(2)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	e := &Emulator{
		URL: "http://" + addr,
		client: &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
		}},
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	name := o.FunctionName
	if name == "" {
		name = "function"
	}
	// The emulator hands its own environment to the function; it reads no
	// configuration from it that the flags below do not override.
	env := append([]string{}, o.Env...)
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(max(1, int(timeout/time.Second))),
	)
	cmd := exec.Command(emulator,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"--log-level", "info",
		bootstrap,
	)
	cmd.Env = env
	// Lambda runs the bootstrap in the folder holding it (/var/task).
	cmd.Dir = filepath.Dir(bootstrap)
	e.Launched = time.Now()
	if e.proc, err = child.Start(cmd, o.Output); err != nil {
		return nil, err
	}
	// Not a request: the only path the emulator serves is the invoke
	// itself. A dial alone could reach another process that took the port:
	// the listener must be the emulator's own. The runtime API too: the
	// emulator starts it beside the invoke's listener, and a bootstrap
	// started by an invoke before it listens finds nothing and exits,
	// failing that invoke (seen on a busy machine).
	runtimeAPI := "127.0.0.1:" + strconv.Itoa(ports[1])
	for _, a := range []string{addr, runtimeAPI} {
		if err := e.proc.WaitReady(ctx, 2*time.Millisecond, e.proc.Serves(a)); err != nil {
			e.Close()
			return nil, fmt.Errorf("%w; its output:\n%s", err, e.Output())
		}
	}
	e.Ready = time.Since(e.Launched)
	return e, nil
}

// Invocation is one invoke's answer and timing.
type Invocation struct {
	// Payload is what the function returned (for an API Gateway function,
	// the response event).
	Payload []byte
	// FirstByte is the time from sending the invoke to the first byte of
	// the answer; Total to its last byte. The emulator buffers the
	// function's answer, so they differ by the transfer only.
	FirstByte, Total time.Duration
}

// ErrTimedOut is returned when the function ran past its timeout.
var ErrTimedOut = errors.New("the function timed out")

// FunctionError is the error a function returned (or its crash), as the
// Lambda Invoke API reports it.
type FunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
	// Payload is the emulator's answer as it came.
	Payload []byte `json:"-"`
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("the function failed: %s: %s", e.Type, e.Message)
}

// Invoke sends event to the function and returns its answer. A function
// error is a *FunctionError.
func (e *Emulator) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	inv, err := e.InvokeTimed(ctx, event)
	return inv.Payload, err
}

// InvokeTimed is Invoke with the invoke's timing. Invokes of one Emulator
// run one after another, as they do in one Lambda execution environment.
func (e *Emulator) InvokeTimed(ctx context.Context, event []byte) (Invocation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var inv Invocation
	var start, first time.Time
	trace := &httptrace.ClientTrace{
		WroteRequest:         func(httptrace.WroteRequestInfo) { start = time.Now() },
		GotFirstResponseByte: func() { first = time.Now() },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, e.URL+InvokePath, bytes.NewReader(event))
	if err != nil {
		return inv, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		if e.Exited() {
			return inv, fmt.Errorf("invoking: %w (%s has exited; its output:\n%s)", err, Command, e.Output())
		}
		return inv, fmt.Errorf("invoking: %w", err)
	}
	defer resp.Body.Close()
	inv.Payload, err = io.ReadAll(resp.Body)
	end := time.Now()
	if err != nil {
		return inv, fmt.Errorf("reading the invoke's answer: %w", err)
	}
	inv.FirstByte, inv.Total = first.Sub(start), end.Sub(start)
	if resp.StatusCode != http.StatusOK {
		return inv, fmt.Errorf("the emulator answered %s: %s", resp.Status, inv.Payload)
	}
	// The emulator answers a timeout with 200 and this text.
	if bytes.HasPrefix(inv.Payload, []byte("Task timed out after")) {
		return inv, fmt.Errorf("%w: %s", ErrTimedOut, inv.Payload)
	}
	var fe FunctionError
	if json.Unmarshal(inv.Payload, &fe) == nil && fe.Type != "" && fe.Message != "" {
		fe.Payload = inv.Payload
		return inv, &fe
	}
	return inv, nil
}

// Close stops the emulator, which stops the function, and waits until it
// has exited. It is safe to call more than once.
func (e *Emulator) Close() error {
	e.client.CloseIdleConnections()
	// SIGTERM lets the emulator stop the bootstrap, which runs in a process
	// group of the emulator's making; SIGKILL is the fallback.
	return e.proc.Stop(5 * time.Second)
}

// Exited reports whether the emulator's process has exited.
func (e *Emulator) Exited() bool {
	select {
	case <-e.proc.Exited():
		return true
	default:
		return false
	}
}

// Pid is the emulator's process id; the function's bootstrap runs as its
// child once invoked.
func (e *Emulator) Pid() int { return e.proc.Pid() }

// Output is what the emulator and the function have printed so far: the
// emulator's START/END/REPORT lines and the function's logs.
func (e *Emulator) Output() string { return e.proc.Output() }

// Start launches an Emulator for the test and stops it when the test ends,
// printing its output if the test failed. Failing to install or start the
// emulator fails the test rather than skipping it: a skipped test would
// pass without exercising anything.
func Start(tb testing.TB, o Options) *Emulator {
	tb.Helper()
	e, err := Launch(context.Background(), o)
	if err != nil {
		tb.Fatalf("rie: %v", err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			tb.Logf("%s output:\n%s", Command, e.Output())
		}
	})
	return e
}

// BuildBootstrap builds the function in package pkg (e.g.
// "./functions/meta", relative to dir) for this machine, as the Lambda
// build does but without cross-compiling, and returns the binary's path
// (a file named bootstrap in outDir).
func BuildBootstrap(ctx context.Context, dir, pkg, outDir string) (string, error) {
	out := filepath.Join(outDir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=", "GOARCH=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

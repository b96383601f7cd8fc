package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/internal/rie"
	"productanalytics/internal/stack"
	"productanalytics/shared/access"
	"productanalytics/shared/config"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/request"
	"productanalytics/shared/warmup"
)

// bootstraps builds each function for this machine once per test run.
var bootstraps = struct {
	once  sync.Once
	paths map[string]string
	err   error
}{}

func bootstrap(t testing.TB, function string) string {
	t.Helper()
	bootstraps.once.Do(func() {
		bootstraps.paths = map[string]string{}
		dir, err := os.MkdirTemp("", "pa-bootstraps-")
		if err != nil {
			bootstraps.err = err
			return
		}
		for _, f := range []string{"load", "dryrun", "meta", "warmup"} {
			out := filepath.Join(dir, f)
			os.MkdirAll(out, 0o755)
			if bootstraps.paths[f], err = rie.BuildBootstrap(context.Background(), root, "./functions/"+f, out); err != nil {
				bootstraps.err = err
				return
			}
		}
	})
	if bootstraps.err != nil {
		t.Fatal(bootstraps.err)
	}
	return bootstraps.paths[function]
}

// emulate runs a function's bootstrap under the runtime interface emulator
// with the configuration the template gives it, pointed at the local stack.
func emulate(t testing.TB, function string) *rie.Emulator {
	t.Helper()
	e := env.APIEnv()
	e["LOG_LEVEL"] = "info"
	return rie.Start(t, rie.Options{Bootstrap: bootstrap(t, function), Env: rie.EnvFromMap(e), FunctionName: function, Output: apiLogs})
}

// proxyEvent is what a test reads of an API Gateway event to know what the
// function must answer, in either payload version.
type proxyEvent struct {
	v2        bool
	requestID string
	method    string
	path      string
	header    http.Header
	body      string
}

func readEvent(t *testing.T, raw []byte) proxyEvent {
	t.Helper()
	var probe struct{ Version string }
	json.Unmarshal(raw, &probe)
	if probe.Version == "2.0" {
		var e events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		for k, v := range e.Headers {
			h.Set(k, v)
		}
		return proxyEvent{v2: true, requestID: e.RequestContext.RequestID, method: e.RequestContext.HTTP.Method, path: e.RawPath, header: h, body: e.Body}
	}
	var e events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, vs := range e.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return proxyEvent{requestID: e.RequestContext.RequestID, method: e.HTTPMethod, path: e.Path, header: h, body: e.Body}
}

// expected is what the API must answer to an event, decided from the event
// alone: its route, its caller token checked with the local stack's key,
// and its query checked by the request rules.
type expected struct {
	function string
	status   int
	message  string // for refusals
	key      string // a top-level key of Cube's answer, for successes
}

func expect(t *testing.T, ev proxyEvent) expected {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(ev.path, "/api/v4"), "/")
	if len(parts) != 6 || parts[1] != "projects" {
		t.Fatalf("event path %s is not an API route", ev.path)
	}
	endpoint := parts[5]
	x := expected{function: strings.ReplaceAll(endpoint, "-", "")}
	id, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		t.Fatalf("event path id: %v", err)
	}
	checker := access.NewJWT(access.JWTOptions{Key: func(context.Context) (string, error) { return stack.LocalCallerKey, nil }})
	if err := checker.CheckProject(context.Background(), ev.header, id); err != nil {
		x.status, x.message = access.Status(err)
		return x
	}
	if endpoint != "meta" {
		if _, err := request.ParseBody([]byte(ev.body)); err != nil {
			var re *request.Error
			errors.As(err, &re)
			x.status, x.message = re.Status, re.Message
			return x
		}
	}
	x.status, x.key = 200, map[string]string{"load": "results", "dry-run": "normalizedQueries", "meta": "cubes"}[endpoint]
	return x
}

// TestEventsUnderTheEmulator runs every API event of events/ through the
// real bootstrap of its function under aws-lambda-rie, against the local
// stack, and checks the answer.
func TestEventsUnderTheEmulator(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(root, "events", "*.json"))
	emulators := map[string]*rie.Emulator{}
	seen := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !isProxyEvent(raw) {
			continue
		}
		seen++
		parent := t
		t.Run(filepath.Base(f), func(t *testing.T) {
			ev := readEvent(t, raw)
			want := expect(t, ev)
			e := emulators[want.function]
			if e == nil {
				// One emulator per function for the whole test, as one
				// execution environment serves many invocations.
				e = emulate(parent, want.function)
				emulators[want.function] = e
			}
			out, err := e.Invoke(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			var resp struct {
				StatusCode int                 `json:"statusCode"`
				Body       string              `json:"body"`
				Headers    map[string]string   `json:"headers"`
				Multi      map[string][]string `json:"multiValueHeaders"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("answer %s: %v", out, err)
			}
			if ev.v2 != (resp.Headers != nil && resp.Multi == nil) {
				t.Errorf("payload %v event answered in the other version: %s", ev.v2, truncate(string(out), 200))
			}
			if resp.StatusCode != want.status {
				t.Fatalf("status %d %s; want %d", resp.StatusCode, truncate(resp.Body, 300), want.status)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatalf("body is not a JSON object: %s", truncate(resp.Body, 300))
			}
			if want.message != "" && string(body["message"]) != strconv.Quote(want.message) {
				t.Fatalf("message %s; want %q", body["message"], want.message)
			}
			if want.key != "" && len(body[want.key]) < 3 {
				t.Fatalf("answer lacks %q: %s", want.key, truncate(resp.Body, 300))
			}
			// The function's log line carries the request's id: the
			// caller's X-Request-Id, else API Gateway's.
			id := ev.header.Get("X-Request-Id")
			if id == "" {
				id = ev.requestID
			}
			// The line reaches the emulator's output through a pipe, which
			// may deliver it after the answer: wait for it.
			line := `"request_id":"` + id + `"`
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(e.Output(), line); {
				if time.Now().After(deadline) {
					t.Fatalf("no log line with request_id %q in the function's output within 10 s", id)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	if seen < 5 {
		t.Fatalf("only %d API events in events/", seen)
	}
}

func isProxyEvent(raw []byte) bool {
	var probe struct {
		Version    string `json:"version"`
		HTTPMethod string `json:"httpMethod"`
	}
	return json.Unmarshal(raw, &probe) == nil && (probe.Version == "2.0" || probe.HTTPMethod != "")
}

// TestWarmupUnderTheEmulator runs events/warmup.json, the input its schedule
// sends, through the warm-up's real bootstrap against the local stack.
func TestWarmupUnderTheEmulator(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "events", "warmup.json"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := warmup.ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	e := map[string]string{}
	for k, v := range env.APIEnv() {
		if slices.Contains(config.CubeVariables(), k) || strings.HasPrefix(k, "AWS_") {
			e[k] = v
		}
	}
	em := rie.Start(t, rie.Options{Bootstrap: bootstrap(t, "warmup"), Env: rie.EnvFromMap(e), FunctionName: "warmup", Output: apiLogs})
	out, err := em.Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var sum warmup.Summary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("answer %s: %v", truncate(string(out), 300), err)
	}
	want := len(in.Projects) * len(dashboards.Queries(time.Now()))
	if sum.OK != want || sum.Failed != 0 {
		t.Fatalf("ok %d failed %d; want %d ok: %s", sum.OK, sum.Failed, want, truncate(string(out), 500))
	}
}

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/internal/rie"
	"productanalytics/internal/samlocal"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/access"
	"productanalytics/shared/api"
	"productanalytics/shared/emf"
	"productanalytics/shared/metrics"
	"productanalytics/shared/request"
	"productanalytics/shared/trace"
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

// logicalIDs are the template's names of the functions.
var logicalIDs = map[string]string{"load": "LoadFunction", "dryrun": "DryRunFunction", "meta": "MetaFunction", "warmup": "WarmupFunction"}

// emulate runs a function's bootstrap under the runtime interface emulator
// as `sam local invoke` runs it against the local stack: with the
// environment SAM CLI makes of the template and the --env-vars file `make
// run` writes (here naming the stack as this machine reaches it, where a
// container names it host.docker.internal).
func emulate(t testing.TB, function string) *rie.Emulator {
	t.Helper()
	id := logicalIDs[function]
	return rie.Start(t, rie.Options{Bootstrap: bootstrap(t, function), Env: rie.EnvFromMap(samEnv(t, id)), FunctionName: id, Output: apiLogs})
}

// samEnv is the environment SAM CLI gives function id: the template's
// environment merged with the --env-vars file, written and read back as
// SAM CLI reads it, and --region as the printed commands pass it.
func samEnv(t testing.TB, id string) map[string]string {
	t.Helper()
	tpl, err := samlocal.ReadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := samlocal.NewEnvFile(tpl, env.FunctionEnv(""))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sam-env.json")
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	if f, err = samlocal.ReadEnvFile(path); err != nil {
		t.Fatal(err)
	}
	e, err := tpl.Environment(id, samlocal.Invocation{EnvVars: f, Region: samlocal.Region})
	if err != nil {
		t.Fatal(err)
	}
	return e
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
		x.status, x.message = api.Answer(err)
		return x
	}
	if endpoint != "meta" {
		if _, err := request.ParseBody([]byte(ev.body)); err != nil {
			x.status, x.message = api.Answer(err)
			return x
		}
	}
	x.status, x.key = 200, map[string]string{"load": "results", "dry-run": "normalizedQueries", "meta": "cubes"}[endpoint]
	return x
}

// TestEventsUnderTheEmulator runs every API event of events/ through the
// real bootstrap of its function under aws-lambda-rie, as `sam local` runs
// it with the environment file `make run` writes, against the local stack.
// It checks the answer, the function's log line (its request id, the trace
// id of the event's X-Amzn-Trace-Id, and the metrics CloudWatch would take
// from it), and that Cube logged a load under the same request id. (The
// emulator hands the function no trace header of its own, as Lambda does
// with active tracing: the shared/api tests cover that one.)
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
			// The line reaches us through the emulator's pipe, after the answer.
			var line string
			wait.Until(t, fmt.Sprintf("a log line with request_id %q in the function's output", id), func() bool {
				line = requestLine(e.Output(), id)
				return line != ""
			})
			checkLambdaLine(t, line, want, trace.ID(ev.header.Get(trace.Header)))
			if want.status == 200 && want.function == "load" {
				wait.Until(t, fmt.Sprintf("Cube's log of request %s", id), func() bool {
					return strings.Contains(cubeLogs.String(), `"requestId":"`+id+`"`)
				})
			}
		})
	}
	if seen < 5 {
		t.Fatalf("only %d API events in events/", seen)
	}
}

// requestLine returns the API's log line of request id in logs, "" if none.
func requestLine(logs, id string) string {
	for l := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"request_id":"`+id+`"`) {
			return l
		}
	}
	return ""
}

// checkLambdaLine checks a function's request line under the emulator: the
// trace its request came in (traceID; none when ""), the invocation, and
// the metrics CloudWatch takes from it, in the namespace the template gives
// a stack sam local names "local".
func checkLambdaLine(t *testing.T, line string, want expected, traceID string) {
	t.Helper()
	var fields map[string]any
	if err := json.Unmarshal([]byte(line), &fields); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	if got, _ := fields["trace_id"].(string); got != traceID || fields["lambda_request_id"] == nil {
		t.Errorf("trace_id %v, lambda_request_id %v; want %s and the invocation's id: %s", fields["trace_id"], fields["lambda_request_id"], traceID, line)
	}
	data, err := emf.Extract([]byte(line))
	if err != nil {
		t.Fatalf("%v\n%s", err, line)
	}
	endpoint := map[string]string{"load": "load", "dryrun": "dry-run", "meta": "meta"}[want.function]
	class := fmt.Sprintf("%dxx", want.status/100)
	var requests, refusals bool
	for _, d := range data {
		if d.Namespace != "ProductAnalytics/local" {
			t.Errorf("%s in namespace %q, want ProductAnalytics/local", d.Name, d.Namespace)
		}
		requests = requests || d.Name == metrics.Requests && d.Dimensions[metrics.Endpoint] == endpoint && d.Dimensions[metrics.StatusClass] == class
		refusals = refusals || d.Name == metrics.Refusals
	}
	if !requests || refusals != (want.status != 200) {
		t.Errorf("Requests{Endpoint=%s,StatusClass=%s}: %v, Refusals: %v; want the request counted, refused when not 200: %s", endpoint, class, requests, refusals, line)
	}
}

func isProxyEvent(raw []byte) bool {
	var probe struct {
		Version    string `json:"version"`
		HTTPMethod string `json:"httpMethod"`
	}
	return json.Unmarshal(raw, &probe) == nil && (probe.Version == "2.0" || probe.HTTPMethod != "")
}

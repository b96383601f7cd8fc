package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"productanalytics/internal/logcheck"
	"productanalytics/shared/apigw"
	"productanalytics/shared/emf"
	"productanalytics/shared/metrics"
	"productanalytics/shared/trace"
)

// published reads each log line of text as CloudWatch does and returns the
// metric values it would publish, as "Name{Dim=value,...}=value".
func published(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
		data, err := emf.Extract([]byte(line))
		if err != nil {
			t.Fatalf("%v\n%s", err, line)
		}
		for _, d := range data {
			var dims []string
			for k, v := range d.Dimensions {
				dims = append(dims, k+"="+v)
			}
			sort.Strings(dims)
			out = append(out, fmt.Sprintf("%s{%s}=%v", d.Name, strings.Join(dims, ","), d.Values[0]))
		}
	}
	return out
}

func TestEveryCauseHasAReason(t *testing.T) {
	names := map[string]error{}
	for _, a := range answers {
		name := reasonName(a.cause)
		if name == internalReason || name == "" {
			t.Errorf("%v: no Reason of its own", a.cause)
		}
		if other, dup := names[name]; dup {
			t.Errorf("%v and %v share the Reason %s", a.cause, other, name)
		}
		names[name] = a.cause
		if wrapped := fmt.Errorf("doing something: %w", a.cause); reasonName(wrapped) != name {
			t.Errorf("%v wrapped: got %s, want %s", a.cause, reasonName(wrapped), name)
		}
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("a fault of the API"), internalReason},
	} {
		if got := reasonName(tt.err); got != tt.want {
			t.Errorf("reasonName(%v): got %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestRequestLinesCarryTheirMetrics sends requests of each kind and reads
// their log lines as CloudWatch would.
func TestRequestLinesCarryTheirMetrics(t *testing.T) {
	var n atomic.Int64
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if n.Add(1) == 1 {
			io.WriteString(w, `{"error":"Continue wait"}`)
			return
		}
		io.WriteString(w, cubeAnswer)
	})
	auth := "Bearer " + project1Token(t)
	tests := []struct {
		name, method, path, auth, body string
		want                           []string
	}{
		{"a load after a poll", "POST", "/projects/1/product_analytics/request/load", auth, seedTracked, []string{
			"Requests{Endpoint=load,StatusClass=2xx}=1", "Requests{StatusClass=2xx}=1", "Requests{}=1",
			"ContinueWaitPolls{Endpoint=load}=1", "ContinueWaitAnswers{Endpoint=load}=0",
		}},
		{"another project", "POST", "/projects/2/product_analytics/request/dry-run", auth, seedTracked, []string{
			"Requests{Endpoint=dry-run,StatusClass=4xx}=1", "Refusals{Reason=ProjectNotFound}=1",
		}},
		{"no token", "GET", "/projects/1/product_analytics/request/meta", "", "", []string{
			"Requests{Endpoint=meta,StatusClass=4xx}=1", "Refusals{Reason=Unauthenticated}=1",
		}},
		{"a bad query", "POST", "/projects/1/product_analytics/request/load", auth, `{"query":{"limit":60000}}`, []string{
			"Requests{Endpoint=load,StatusClass=4xx}=1", "Refusals{Reason=InvalidRequest}=1",
		}},
		{"no route", "GET", "/projects/1/other", auth, "", []string{
			"Requests{Endpoint=none,StatusClass=4xx}=1", "Refusals{Reason=NoRoute}=1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := &logcheck.Buffer{}
			log := slog.New(slog.NewJSONHandler(io.MultiWriter(lines, logs), nil))
			h := NewHandler(newTestChecker(), newTestClient(f), log, Options{Metrics: metrics.NewRecorder("ProductAnalytics/test", nil, log)})
			serve(h, tt.method, tt.path, tt.auth, tt.body)
			got := published(t, lines.String())
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("published %v, want %s", got, w)
				}
			}
			if cube := slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "CubeLatency") }); cube != (tt.name == "a load after a poll") {
				t.Errorf("CubeLatency published: %v, want it only when Cube was called", cube)
			}
		})
	}
}

// TestTraceReachesCubeAndTheLog runs a request as a Lambda invocation
// behind API Gateway, and one as the local server gets it, and checks that
// Cube gets the trace header and the log line every id that joins it to
// API Gateway's, Lambda's and X-Ray's records.
func TestTraceReachesCubeAndTheLog(t *testing.T) {
	const (
		lambdaTrace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
		albTrace    = "Root=1-67891233-abcdef012345678912345678"
	)
	var mu sync.Mutex
	cubeSaw := map[string]string{}
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		cubeSaw[r.Header.Get("X-Request-Id")] = r.Header.Get(trace.Header)
		mu.Unlock()
		io.WriteString(w, cubeAnswer)
	})
	lines := &logcheck.Buffer{}
	h := NewHandler(newTestChecker(), newTestClient(f), slog.New(slog.NewJSONHandler(io.MultiWriter(lines, logs), nil)), Options{})
	auth := "Bearer " + project1Token(t)

	// As Lambda runs it: aws-lambda-go's context, API Gateway's event.
	//lint:ignore SA1029 the key aws-lambda-go itself uses
	ctx := context.WithValue(context.Background(), "x-amzn-trace-id", lambdaTrace)
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd"})
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/projects/1/product_analytics/request/load", Body: seedTracked,
		Headers: map[string]string{"authorization": auth, "x-request-id": "caller-7", "x-amzn-trace-id": albTrace},
	}
	ev.RequestContext.HTTP.Method = "POST"
	ev.RequestContext.RequestID = "Cz3kPg1XoAMEb0w="
	raw, _ := json.Marshal(ev)
	if _, err := apigw.Handler(h)(ctx, raw); err != nil {
		t.Fatal(err)
	}
	// As the local server gets it, behind a load balancer.
	r := httptest.NewRequest("POST", "/projects/1/product_analytics/request/load", strings.NewReader(seedTracked))
	r.Header.Set("Authorization", auth)
	r.Header.Set("X-Request-Id", "caller-8")
	r.Header.Set(trace.Header, albTrace)
	h.ServeHTTP(httptest.NewRecorder(), r)

	tests := []struct {
		id        string
		cubeTrace string
		line      map[string]string
	}{
		{"caller-7", lambdaTrace, map[string]string{
			"trace_id": "1-5759e988-bd862e3fe1be46a994272793", "gateway_request_id": "Cz3kPg1XoAMEb0w=",
			"lambda_request_id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
		}},
		{"caller-8", albTrace, map[string]string{
			"trace_id": "1-67891233-abcdef012345678912345678", "gateway_request_id": "", "lambda_request_id": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			mu.Lock()
			got := cubeSaw[tt.id]
			mu.Unlock()
			if got != tt.cubeTrace {
				t.Errorf("Cube got trace %q, want %q", got, tt.cubeTrace)
			}
			var line map[string]any
			for l := range strings.SplitSeq(lines.String(), "\n") {
				if strings.Contains(l, `"request_id":"`+tt.id+`"`) {
					json.Unmarshal([]byte(l), &line)
				}
			}
			for k, want := range tt.line {
				if got, _ := line[k].(string); got != want {
					t.Errorf("log line %s: got %q, want %q", k, got, want)
				}
			}
		})
	}
}

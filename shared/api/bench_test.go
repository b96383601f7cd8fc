package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/shared/access"
	"productanalytics/shared/apigw"
	"productanalytics/shared/cube"
	"productanalytics/shared/metrics"
)

// instantCube answers at once, so that a benchmark measures the handler's
// own work: routing, token check, validation, logging.
type instantCube struct{}

func (instantCube) Do(context.Context, cube.Request) (*cube.Response, error) {
	return &cube.Response{Body: []byte(cubeAnswer), Token: "t"}, nil
}

func benchHandler() *Handler {
	checker := access.NewJWT(access.JWTOptions{Key: func(context.Context) (string, error) { return callerKey, nil }})
	return NewHandler(checker, instantCube{}, slog.New(slog.NewJSONHandler(io.Discard, nil)), Options{})
}

// BenchmarkHandler is the handler's own time per load request, Cube excluded.
func BenchmarkHandler(b *testing.B) {
	h := benchHandler()
	auth := "Bearer " + project1Token(&testing.T{})
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/projects/1/product_analytics/request/load", strings.NewReader(seedTracked))
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkHandlerLambda is the same request arriving as an API Gateway
// payload 2.0 event, the way the Lambda function receives it.
func BenchmarkHandlerLambda(b *testing.B) {
	lh := apigw.Handler(benchHandler())
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/projects/1/product_analytics/request/load",
		Headers: map[string]string{"authorization": "Bearer " + project1Token(&testing.T{})},
		Body:    seedTracked,
	}
	ev.RequestContext.HTTP.Method = "POST"
	raw, _ := json.Marshal(ev)
	b.ReportAllocs()
	for b.Loop() {
		out, err := lh(context.Background(), raw)
		if err != nil || out.(events.APIGatewayV2HTTPResponse).StatusCode != 200 {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerMetrics is what the embedded metrics add to a request's
// log line: the same request through a handler without them and one with
// them, alternating in each iteration so that both see the same machine.
func BenchmarkHandlerMetrics(b *testing.B) {
	checker := access.NewJWT(access.JWTOptions{Key: func(context.Context) (string, error) { return callerKey, nil }})
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	plain := NewHandler(checker, instantCube{}, log, Options{})
	counters := &metrics.Counters{}
	measured := NewHandler(checker, instantCube{}, log, Options{Metrics: metrics.NewRecorder("ProductAnalytics/bench", counters, log)})
	auth := "Bearer " + project1Token(&testing.T{})
	serveOne := func(h *Handler) time.Duration {
		r := httptest.NewRequest("POST", "/projects/1/product_analytics/request/load", strings.NewReader(seedTracked))
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		took := time.Since(start)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		return took
	}
	var without, with time.Duration
	n := 0
	for b.Loop() {
		counters.SecretFetched(nil)
		without += serveOne(plain)
		with += serveOne(measured)
		n++
	}
	b.ReportMetric(float64(without.Nanoseconds())/float64(n), "ns/request")
	b.ReportMetric(float64(with.Nanoseconds())/float64(n), "ns/request-with-metrics")
	b.ReportMetric(float64((with-without).Nanoseconds())/float64(n), "ns-added")
}

// BenchmarkInFlightLimit is the handler's own time per load request with
// and without the per-project limit, 8 callers at once over 4 projects:
// what counting a project's requests in flight costs, side by side.
func BenchmarkInFlightLimit(b *testing.B) {
	checker := access.NewJWT(access.JWTOptions{Key: func(context.Context) (string, error) { return callerKey, nil }})
	auth := "Bearer " + callerToken(&testing.T{}, map[string]any{"projects": []int{1, 2, 3, 4}})
	for _, limit := range []int{0, 16} {
		b.Run("limit="+strconv.Itoa(limit), func(b *testing.B) {
			h := NewHandler(checker, instantCube{}, slog.New(slog.NewJSONHandler(io.Discard, nil)), Options{MaxInFlightPerProject: limit})
			var n atomic.Int64
			b.SetParallelism(4) // 8 callers on 2 cores
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				path := "/projects/" + strconv.Itoa(int(n.Add(1)%4)+1) + "/product_analytics/request/load"
				for pb.Next() {
					r := httptest.NewRequest("POST", path, strings.NewReader(seedTracked))
					r.Header.Set("Authorization", auth)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Errorf("%d %s", w.Code, w.Body)
						return
					}
				}
			})
		})
	}
}

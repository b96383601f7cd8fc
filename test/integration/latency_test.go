package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/rie"
	"productanalytics/shared/cube"
)

// BenchmarkLambdaLoad runs the load function's real bootstrap under the
// runtime interface emulator with the seed's first example, against the
// local stack. "cold" launches a new execution environment each time and
// times from the invoke (which starts the bootstrap process) to the first
// byte of its answer: process start, configuration, the Cube key fetched
// from moto_server, the caller's key, and the Cube call. "warm" times later
// invokes, each beside the same query sent straight to Cube and beside an
// invoke that does nothing (the emulator's own share of the difference).
func BenchmarkLambdaLoad(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(root, "events", "load-v2.json"))
	if err != nil {
		b.Fatal(err)
	}
	invoke := func(b *testing.B, e *rie.Emulator) time.Duration {
		inv, err := e.InvokeTimed(context.Background(), raw)
		if err != nil || !bytes.Contains(inv.Payload, []byte(`"statusCode":200`)) {
			b.Fatalf("%v %s", err, truncate(string(inv.Payload), 300))
		}
		return inv.FirstByte
	}
	warmUp := emulate(b, "load")
	invoke(b, warmUp) // Cube's cache now holds the answer
	b.Run("cold", func(b *testing.B) {
		var firsts []time.Duration
		for b.Loop() {
			b.StopTimer()
			e := emulate(b, "load")
			b.StartTimer()
			firsts = append(firsts, invoke(b, e))
			b.StopTimer()
			e.Close()
			b.StartTimer()
		}
		b.ReportMetric(median(firsts), "median-ms/cold-start")
	})
	b.Run("warm", func(b *testing.B) {
		cubeToken, _ := cube.MintToken(env.CubeOf(1).Key(), 1, "bench", time.Now())
		// The emulator's own round trip: the same bootstrap without
		// configuration answers 503 at once, calling nothing.
		floor := rie.Start(b, rie.Options{Bootstrap: bootstrap(b, "load"), FunctionName: "floor"})
		var lambda, direct, empty []time.Duration
		for b.Loop() {
			inv, err := floor.InvokeTimed(context.Background(), raw)
			if err != nil || !bytes.Contains(inv.Payload, []byte(`"statusCode":503`)) {
				b.Fatalf("%v %s", err, inv.Payload)
			}
			empty = append(empty, inv.FirstByte)
			lambda = append(lambda, invoke(b, warmUp))
			start := time.Now()
			req, _ := http.NewRequest("POST", env.CubeOf(1).URL()+"/cubejs-api/v1/load", strings.NewReader(`{"query":`+seedTracked+`,"queryType":"multi"}`))
			req.Header.Set("Authorization", cubeToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			direct = append(direct, time.Since(start))
		}
		b.ReportMetric(median(lambda), "median-ms/invoke")
		b.ReportMetric(median(direct), "median-ms/cube-direct")
		b.ReportMetric(median(lambda)-median(direct), "ms-added")
		b.ReportMetric(median(empty), "median-ms/emulator-floor")
	})
}

func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

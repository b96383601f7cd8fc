package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
)

// BenchmarkSeedLoad is the warm latency of the seed's first example through
// the API, beside the same query sent straight to Cube, in one run: the
// difference is what the API adds (access check, validation, token, proxying).
func BenchmarkSeedLoad(b *testing.B) {
	body := `{"query":` + seedTracked + `,"queryType":"multi"}`
	caller := "Bearer " + stack.Token(time.Hour, 1)
	client := &http.Client{}
	post := func(b *testing.B, url, auth string) {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"data":[{`)) {
			b.Fatalf("%d %s", resp.StatusCode, truncate(string(out), 300))
		}
	}
	cubeToken, err := cube.MintToken(stack.LocalCubeKey, 1, "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	// Both paths first, so that Cube's cache is warm for each.
	post(b, env.APIURL+"/api/v4/projects/1/product_analytics/request/load", caller)
	post(b, env.CubeURL+"/cubejs-api/v1/load", cubeToken)
	b.Run("api", func(b *testing.B) {
		for b.Loop() {
			post(b, env.APIURL+"/api/v4/projects/1/product_analytics/request/load", caller)
		}
	})
	b.Run("cube-direct", func(b *testing.B) {
		for b.Loop() {
			post(b, env.CubeURL+"/cubejs-api/v1/load", cubeToken)
		}
	})
}

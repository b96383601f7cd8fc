// Package soak runs the local stack as `make run` starts it under a minute
// of steady mixed traffic, and checks only what cannot be noise: no answer
// with an unexpected status, the API's and Cube's memory and descriptors not
// growing past the warm-up beyond a generous bound, and no query's SQL in
// Cube's log. `make soak` runs the same for ten minutes and prints the
// figures.
package soak

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/soak"
	"productanalytics/internal/stack"
)

// The bounds on growth from the end of the warm-up (a fifth of the run) to
// the end: far above what a bounded process shows, far below what the
// growth this guards against showed (the API from 12 to 230 MB in four
// minutes, keeping its children's output).
const (
	maxRSSGrowth = 1.5
	maxFDGrowth  = 32
)

func TestSoak(t *testing.T) {
	root, err := stack.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/devstack").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx := context.Background()
	data := filepath.Join(dir, "events")
	if err := stack.GenerateData(ctx, root, data, os.Stderr, "-projects", "1:20000,2:5000"); err != nil {
		t.Fatal(err)
	}
	s, err := soak.StartStack(ctx, bin, root, data)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	res, err := soak.Run(ctx, soak.Options{
		BaseURL:     s.URL,
		Token:       func(p ...int64) string { return stack.Token(time.Hour, p...) },
		Concurrency: 8,
		Duration:    time.Minute,
		Samples:     6,
		Processes:   s.Processes(),
		LogBytes:    s.CubeLogBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	res.Report(&report, s.Processes())
	t.Logf("soak of %s:\n%s", res.Elapsed.Round(time.Second), report.String())

	if res.Unexpected > 0 {
		t.Errorf("got %d answers with an unexpected status; want none: %s", res.Unexpected, strings.Join(res.Examples, "; "))
	}
	warm, end := res.AfterWarmup()
	for _, p := range s.Processes() {
		a, okA := warm.Stats[p.Name]
		b, okB := end.Stats[p.Name]
		if !okA || !okB {
			t.Fatalf("%s was not sampled: %v", p.Name, end.Err)
		}
		if float64(b.RSS) > maxRSSGrowth*float64(a.RSS) {
			t.Errorf("%s's RSS grew from %.1f MB at %s to %.1f MB at %s; want at most %.1f times", p.Name, mb(a.RSS), warm.At.Round(time.Second), mb(b.RSS), end.At.Round(time.Second), maxRSSGrowth)
		}
		if b.FDs > a.FDs+maxFDGrowth {
			t.Errorf("%s's descriptors grew from %d at %s to %d at %s; want at most %d more", p.Name, a.FDs, warm.At.Round(time.Second), b.FDs, end.At.Round(time.Second), maxFDGrowth)
		}
	}
	log, err := os.ReadFile(s.CubeLog)
	if err != nil {
		t.Fatal(err)
	}
	// Cube writes its SQL as "SELECT\n ...": escaped in a JSON line.
	if i := strings.Index(string(log), `SELECT\n`); i >= 0 {
		t.Errorf("Cube's log holds a query's SQL by default: %.300s", log[max(0, i-100):])
	}
	if err := logcheck.Leak(string(log)+s.Output(), stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
		t.Error(err)
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

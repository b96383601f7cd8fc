package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"productanalytics/internal/procstat"
)

// BenchmarkLambdaWarmRSS invokes the load function's real bootstrap b.N
// times in one execution environment under the emulator (`make bench`:
// 20,000), with the seed's example against the local stack, and reports
// the bootstrap process's resident memory after the first invoke, after a
// tenth of them, half of them, and all: flat when nothing accumulates per
// invoke, as a warm Lambda environment serves for hours.
func BenchmarkLambdaWarmRSS(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(root, "events", "load-v2.json"))
	if err != nil {
		b.Fatal(err)
	}
	e := emulate(b, "load")
	invoke := func() {
		inv, err := e.InvokeTimed(context.Background(), raw)
		if err != nil || !bytes.Contains(inv.Payload, []byte(`"statusCode":200`)) {
			b.Fatalf("%v %s", err, truncate(string(inv.Payload), 300))
		}
	}
	invoke() // the emulator starts the bootstrap on the first invoke
	var pid int
	kids, err := procstat.Children(e.Pid())
	for _, k := range kids {
		if k.Name == "bootstrap" {
			pid = k.Pid
		}
	}
	if pid == 0 {
		b.Fatalf("no bootstrap process under the emulator: %v %v", kids, err)
	}
	rss := func() float64 {
		st, err := procstat.Of(pid)
		if err != nil {
			b.Fatal(err)
		}
		return float64(st.RSS) / (1 << 20)
	}
	first := rss()
	type sample struct {
		invokes int
		mb      float64
	}
	var samples []sample
	n := 0
	for b.Loop() {
		invoke()
		if n++; n%1000 == 0 {
			samples = append(samples, sample{n, rss()})
		}
	}
	last := rss()
	if len(samples) > 0 && samples[len(samples)-1].invokes == n {
		samples = samples[:len(samples)-1]
	}
	samples = append(samples, sample{n, last})
	// After a tenth of the invokes: the heap has reached its working size.
	warm := samples[0]
	for _, s := range samples {
		if s.invokes >= n/10 {
			warm = s
			break
		}
	}
	var lines []string
	for i, s := range samples {
		if s == warm || i == len(samples)/2 || i == len(samples)-1 {
			lines = append(lines, fmt.Sprintf("%.1f MB after %d", s.mb, s.invokes))
		}
	}
	b.Logf("bootstrap RSS: %.1f MB after the first invoke; %s", first, strings.Join(lines, "; "))
	b.ReportMetric(first, "MB-rss/first")
	b.ReportMetric(last, "MB-rss/last")
	b.ReportMetric(100*(last-warm.mb)/warm.mb, "%-rss-growth-after-10%")
}

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/internal/child"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/rie"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/apigw"
	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
)

// The benchmarks here put the API beside what it is compared with, in one
// run on one machine, alternating between them so that all see the same
// noise: Cube itself (with one token, as a well-behaved client holds it),
// nginx in front of the same Cube (a proxy that adds nothing but a hop),
// the API's own server (cmd/server, a process of its own, as nginx is), and
// the load, dry-run and meta functions' real bootstraps under the runtime
// interface emulator (eight of each, as eight Lambda instances).

// proxyTarget is one way to ask a question.
type proxyTarget struct {
	name string
	// ask sends one request and returns its status and body.
	ask func(ctx context.Context, endpoint cube.Endpoint, query, acceptEncoding string) (int, []byte, error)
}

// httpTarget asks over HTTP: Cube's own API (and nginx in front of it), or
// the product analytics API.
func httpTarget(name, base string, api bool) proxyTarget {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	caller := "Bearer " + stack.Token(time.Hour, 1)
	cubeToken, _ := cube.MintToken(env.CubeOf(1).Key(), 1, "bench", time.Now())
	return proxyTarget{name: name, ask: func(ctx context.Context, e cube.Endpoint, query, accept string) (int, []byte, error) {
		url, auth := base+"/cubejs-api/v1/"+string(e), cubeToken
		if api {
			url, auth = base+"/api/v4/projects/1/product_analytics/request/"+string(e), caller
		}
		method, body := "POST", io.Reader(strings.NewReader(`{"query":`+query+`,"queryType":"multi"}`))
		if e == cube.Meta {
			method, body = "GET", nil
		}
		req, _ := http.NewRequestWithContext(ctx, method, url, body)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}}
}

// lambdaTarget invokes the functions' bootstraps under the emulator with
// payload 2.0 events, through pools of eight execution environments.
func lambdaTarget(b *testing.B) proxyTarget {
	pools := map[cube.Endpoint]chan *rie.Emulator{}
	for e, fn := range map[cube.Endpoint]string{cube.Load: "load", cube.DryRun: "dryrun", cube.Meta: "meta"} {
		pools[e] = make(chan *rie.Emulator, 8)
		for range 8 {
			pools[e] <- emulate(b, fn)
		}
	}
	caller := "Bearer " + stack.Token(time.Hour, 1)
	return proxyTarget{name: "API, Lambda bootstrap", ask: func(ctx context.Context, e cube.Endpoint, query, accept string) (int, []byte, error) {
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0",
			RawPath: "/projects/1/product_analytics/request/" + string(e),
			Headers: map[string]string{"authorization": caller, "content-type": "application/json"},
		}
		ev.RequestContext.HTTP.Method = "POST"
		if e == cube.Meta {
			ev.RequestContext.HTTP.Method = "GET"
		} else {
			ev.Body = `{"query":` + query + `,"queryType":"multi"}`
		}
		if accept != "" {
			ev.Headers["accept-encoding"] = accept
		}
		raw, _ := json.Marshal(ev)
		em := <-pools[e]
		defer func() { pools[e] <- em }()
		out, err := em.Invoke(ctx, raw)
		if err != nil {
			return 0, nil, err
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return 0, nil, err
		}
		return resp.StatusCode, []byte(resp.Body), nil
	}}
}

// startServer runs cmd/server, the API alone, as a process of its own
// against the local stack, and returns its base address.
func startServer(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "server")).CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/server: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	// Logging as in production: one line per request is part of the cost.
	cmd.Env = append(rie.EnvFromMap(env.APIEnv()), "PORT=0", "LOG_LEVEL=info")
	out := &logcheck.Buffer{}
	p, err := child.Start(cmd, out)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop(5 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), wait.Deadline)
	defer cancel()
	m, err := p.WaitOutput(ctx, regexp.MustCompile(`"addr":"(127\.0\.0\.1:[0-9]+)"`))
	if err != nil {
		b.Fatalf("cmd/server: %v\n%s", err, out.String())
	}
	return "http://" + m[1]
}

// startNginx runs nginx as a reverse proxy to the local Cube, with
// keep-alive to it, or returns "" when nginx is not installed.
func startNginx(b *testing.B) string {
	b.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nginx"); err != nil {
			b.Log("nginx is not installed (apt-get install nginx-light): no nginx column")
			return ""
		}
		bin = "/usr/sbin/nginx"
	}
	ports, err := child.FreePorts(1)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream cube { server %[2]s; keepalive 32; }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://cube;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # Large answers pass through memory, not temporary files the worker
      # (another user) could not write in the test's folder.
      proxy_max_temp_file_size 0;
    }
  }
}
`, dir, strings.TrimPrefix(env.CubeOf(1).URL(), "http://"), ports[0])
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	p, err := child.Start(exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf")), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Stop(5 * time.Second) })
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	ctx, cancel := context.WithTimeout(context.Background(), wait.Deadline)
	defer cancel()
	if err := p.WaitReady(ctx, 10*time.Millisecond, p.Serves(addr)); err != nil {
		b.Fatalf("nginx: %v\n%s", err, p.Output())
	}
	return "http://" + addr
}

// targets are every way to ask, Cube first.
func targets(b *testing.B, lambda bool) []proxyTarget {
	ts := []proxyTarget{httpTarget("Cube", env.CubeOf(1).URL(), false)}
	if n := startNginx(b); n != "" {
		ts = append(ts, httpTarget("nginx in front of Cube", n, false))
	}
	ts = append(ts, httpTarget("API, cmd/server", startServer(b), true))
	if lambda {
		ts = append(ts, lambdaTarget(b))
	}
	return ts
}

func mustAsk(b *testing.B, t proxyTarget, e cube.Endpoint, query, accept string) []byte {
	status, body, err := t.ask(context.Background(), e, query, accept)
	if err != nil || status != 200 {
		b.Fatalf("%s %s: %d %v %s", t.name, e, status, err, truncate(string(body), 300))
	}
	return body
}

func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(float64(len(s))*p))].Microseconds()) / 1000
}

// BenchmarkProxies prints, for load (the seed's first example), dry-run and
// meta, each target's p50, p90 and p99 one request at a time (the targets
// alternating request by request), the time each adds to Cube's p50, and
// its requests per second at 8 in flight (in alternating rounds).
func BenchmarkProxies(b *testing.B) {
	const sequential, rounds, roundTime = 300, 3, time.Second
	ts := targets(b, true)
	queries := map[cube.Endpoint]string{cube.Load: seedTracked, cube.DryRun: seedTracked, cube.Meta: ""}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "endpoint\ttarget\tp50 ms\tp90 ms\tp99 ms\tadds to Cube's p50\treq/s at 8\t")
	for b.Loop() {
		for _, e := range []cube.Endpoint{cube.Load, cube.DryRun, cube.Meta} {
			lat := make([][]time.Duration, len(ts))
			for i, t := range ts {
				mustAsk(b, t, e, queries[e], "") // cached in Cube, connections open
				lat[i] = nil
			}
			for range sequential {
				for i, t := range ts {
					start := time.Now()
					mustAsk(b, t, e, queries[e], "")
					lat[i] = append(lat[i], time.Since(start))
				}
			}
			counts := make([]int64, len(ts))
			elapsed := make([]time.Duration, len(ts))
			for range rounds {
				for i, t := range ts {
					n, d := burst(b, t, e, queries[e], 8, roundTime)
					counts[i] += n
					elapsed[i] += d
				}
			}
			base := percentile(lat[0], 0.5)
			for i, t := range ts {
				p50 := percentile(lat[i], 0.5)
				fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%+.2f ms\t%.0f\t\n", e, t.name, p50, percentile(lat[i], 0.9), percentile(lat[i], 0.99),
					p50-base, float64(counts[i])/elapsed[i].Seconds())
			}
		}
	}
	tw.Flush()
}

// burst keeps inFlight requests going for d, and returns how many were
// answered and how long that took.
func burst(b *testing.B, t proxyTarget, e cube.Endpoint, query string, inFlight int, d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	var failed atomic.Value
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for time.Now().Before(stop) {
				status, body, err := t.ask(context.Background(), e, query, "")
				if err != nil || status != 200 {
					failed.Store(fmt.Sprintf("%s %s: %d %v %s", t.name, e, status, err, truncate(string(body), 200)))
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	return n.Load(), time.Since(start)
}

// BenchmarkDashboardOpening is what a person opening a dashboard waits
// for: every query of shared/dashboards at once for one project, until the
// last answer, through the API's server beside straight to Cube,
// alternating.
func BenchmarkDashboardOpening(b *testing.B) {
	ts := targets(b, false)
	api, direct := ts[len(ts)-1], ts[0]
	qs := dashboards.Queries(time.Now())
	open := func(t proxyTarget) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for _, q := range qs {
			wg.Go(func() { mustAsk(b, t, cube.Load, string(q.Query), "gzip") })
		}
		wg.Wait()
		return time.Since(start)
	}
	open(api)
	open(direct)
	var viaAPI, straight []time.Duration
	for b.Loop() {
		viaAPI = append(viaAPI, open(api))
		straight = append(straight, open(direct))
	}
	b.ReportMetric(percentile(viaAPI, 0.5), "p50-ms/api")
	b.ReportMetric(percentile(straight, 0.5), "p50-ms/cube")
	b.ReportMetric(percentile(viaAPI, 0.5)/percentile(straight, 0.5), "api/cube")
}

// BenchmarkAnswerSizes prints, for answers of about 20 KB, 0.7 MB, 3 MB and
// 12 MB (the export query's rows), each target's median time, with and
// without gzip for the API, the time added to Cube's, and the sizes sent;
// then the most rows of that query a Lambda function can return, as text
// and gzipped.
func BenchmarkAnswerSizes(b *testing.B) {
	const reps = 25
	ts := targets(b, false)
	api := ts[len(ts)-1]
	type column struct {
		name   string
		t      proxyTarget
		accept string
	}
	cols := []column{}
	for _, t := range ts {
		cols = append(cols, column{t.name, t, ""})
	}
	cols = append(cols, column{"API, cmd/server, gzip", api, "gzip"})
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rows\tJSON\ttarget\tmedian ms\tadds to Cube\tadds %\tsent\t")
	var rowBytes, gzRowBytes float64
	for b.Loop() {
		for _, rows := range []int{85, 3000, 12800, 50000} {
			q := strings.Replace(exportQuery, `"limit":50000`, `"limit":`+strconv.Itoa(rows), 1)
			times := make([][]time.Duration, len(cols))
			sent := make([]int, len(cols))
			for i, c := range cols {
				sent[i] = len(mustAsk(b, c.t, cube.Load, q, c.accept))
			}
			for range reps {
				for i, c := range cols {
					start := time.Now()
					mustAsk(b, c.t, cube.Load, q, c.accept)
					times[i] = append(times[i], time.Since(start))
				}
			}
			base := percentile(times[0], 0.5)
			for i, c := range cols {
				// What a target adds is the median of its differences to
				// Cube's time in the same round: Cube's own swings cancel.
				diffs := make([]time.Duration, len(times[i]))
				for j := range diffs {
					diffs[j] = times[i][j] - times[0][j]
				}
				added := percentile(diffs, 0.5)
				fmt.Fprintf(tw, "%d\t%.2f MB\t%s\t%.1f\t%+.1f ms\t%+.1f%%\t%.2f MB\t\n", rows, float64(sent[0])/1e6, c.name, percentile(times[i], 0.5), added, 100*added/base, float64(sent[i])/1e6)
			}
			if rows == 50000 {
				rowBytes, gzRowBytes = float64(sent[0])/float64(rows), float64(sent[len(cols)-1])/float64(rows)
			}
		}
	}
	tw.Flush()
	// What a response event may carry: JSON-escaped text, or base64 of gzip.
	limit := float64(apigw.MaxResponseBytes - 64<<10)
	asText := int(limit / (rowBytes * 1.08)) // page titles and paths escape a few quotes
	gzipped := min(50000, int(limit/(gzRowBytes*4/3)))
	fmt.Printf("export query through Lambda: about %d rows as text, %d gzipped (Cube's own limit is 50,000)\n", asText, gzipped)
}

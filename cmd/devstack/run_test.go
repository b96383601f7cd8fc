package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// TestRunStartsAndStopsEverything runs `devstack run` as `make run` does:
// it answers the seed's example once ready, a second run on the same ports
// is refused without harm, and SIGTERM stops every process it started.
func TestRunStartsAndStopsEverything(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data", "events")
	start := func(apiPort, cubePort string) *exec.Cmd {
		cmd := exec.Command(bin, "run", "-data", data)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "PORT="+apiPort, "CUBE_PORT="+cubePort)
		return cmd
	}

	// Port 0: free ports, bound as they are chosen; the banner says which.
	first := start("0", "0")
	output := &logcheck.Buffer{}
	first.Stdout, first.Stderr = io.Discard, output
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	bannerRE := regexp.MustCompile(`ready at http://(127\.0\.0\.1:(\d+)) .*\(Cube at http://127\.0\.0\.1:(\d+), Secrets Manager emulator at http://(127\.0\.0\.1:\d+)`)
	var banner []string
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := wait.For(ctx, "the ready banner", func() bool {
		banner = bannerRE.FindStringSubmatch(output.String())
		return banner != nil
	}); err != nil {
		t.Fatalf("%v:\n%s", err, output.String())
	}
	api, apiPort, cubePort, moto := banner[1], banner[2], banner[3], banner[4]
	if status := seedLoad(t, "http://"+api); status != http.StatusOK {
		t.Fatalf("seed example: %d", status)
	}
	checkPage(t, "http://"+api)

	second := start(apiPort, cubePort)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running") {
		t.Fatalf("a second run on the same ports: %v\n%s", err, out)
	}
	if status := seedLoad(t, "http://"+api); status != http.StatusOK {
		t.Fatalf("the first run no longer answers after the second was refused: %d", status)
	}
	// The refused run took a log of its own and left the running one's.
	cubeLog, err := os.ReadFile(filepath.Join(dir, "data", "cube.log"))
	if err != nil || !strings.Contains(string(cubeLog), "cube listening on 127.0.0.1:"+cubePort) {
		t.Errorf("the running stack's Cube log lost its start after a second run (%v): %.300s", err, cubeLog)
	}

	first.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devstack run did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("devstack run did not stop within 20 s of SIGTERM")
	}
	for _, addr := range []string{api, "127.0.0.1:" + cubePort, moto} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after devstack run stopped", addr)
		}
	}
	for _, project := range []int64{1, 2} {
		if _, err := os.Stat(eventsdb.Path(data, project)); err != nil {
			t.Errorf("the demo data: %v", err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(data, "*.tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "cube.log")); err != nil {
		t.Errorf("Cube's log beside the data folder: %v", err)
	}
}

// checkPage checks that the dashboards page is served at / and gets the
// demo projects and a token from the stack.
func checkPage(t *testing.T, base string) {
	t.Helper()
	for _, c := range []struct{ path, want string }{
		{"/", "<title>Product analytics dashboards</title>"},
		{"/vendor/cubejs-client-core.umd.js", "cubejs"},
		{"/local.json", `{"projects":[1,2],"token":"`},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), c.want) {
			t.Errorf("GET %s: %d %.100q; want 200 with %q", c.path, resp.StatusCode, b, c.want)
		}
	}
}

func seedLoad(t *testing.T, base string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v4/projects/1/product_analytics/request/load", strings.NewReader(seed.Body(seed.TrackedEvents)))
	req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, 1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

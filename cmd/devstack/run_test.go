package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/samlocal"
	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/emf"
	"productanalytics/shared/metrics"
)

// TestRunStartsAndStopsEverything runs `devstack run` as `make run LISTEN=0.0.0.0`
// does: it answers the seed's example once ready, on every address so that
// containers reach it, with a log line CloudWatch turns into metrics; it
// writes the sam local environment file and prints the sam commands; a
// second run on the same ports is refused without harm, and SIGTERM stops
// every process it started.
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
		cmd.Env = append(os.Environ(), "PORT="+apiPort, "CUBE_PORT="+cubePort, "LISTEN=0.0.0.0", "METRICS_NAMESPACE=")
		return cmd
	}

	// Port 0: free ports, bound as they are chosen; the banner says which.
	first := start("0", "0")
	output, logs := &logcheck.Buffer{}, &logcheck.Buffer{}
	first.Stdout, first.Stderr = logs, output
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	bannerRE := regexp.MustCompile(`ready at http://(127\.0\.0\.1:(\d+)) .*\(Cube at http://127\.0\.0\.1:(\d+), Secrets Manager emulator at http://(127\.0\.0\.1:\d+)`)
	var banner []string
	// Long: on a fresh machine the first run installs Cube's node modules.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	checkMetrics(t, logs)
	checkSAM(t, output.String(), filepath.Join(dir, "data", "sam-env.json"), cubePort, moto)
	for _, port := range []string{apiPort, cubePort, moto[strings.LastIndex(moto, ":")+1:]} {
		checkReachableBeyondLoopback(t, port)
	}

	checkCubeSupervised(t, first.Process.Pid, "http://"+api, logs)

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
	if err != nil || !regexp.MustCompile(`cube listening on \S+:`+cubePort+`\n`).Match(cubeLog) {
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

// checkCubeSupervised kills the stack's Cube as a crash would and checks
// that the stack restarts it by itself, says so in its log, and answers
// again.
func checkCubeSupervised(t *testing.T, devstack int, api string, logs *logcheck.Buffer) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return // the stack's children are found in /proc
	}
	cube, err := childNamed(devstack, "server.js")
	if err != nil {
		t.Fatalf("finding the stack's Cube: %v", err)
	}
	if err := syscall.Kill(cube, syscall.SIGKILL); err != nil {
		t.Fatalf("killing Cube (pid %d): %v", cube, err)
	}
	// Cube's start, compile included, takes long on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := wait.For(ctx, "the stack's log of Cube's restart", func() bool {
		return strings.Contains(logs.String(), `"msg":"cube exited; restarting it"`) &&
			strings.Contains(logs.String(), `"msg":"cube restarted"`)
	}); err != nil {
		t.Fatalf("%v: %.2000s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"exit":"signal: killed"`) {
		t.Errorf("the restart's log line does not say how Cube ended: %.500s", logs.String())
	}
	wait.Until(t, "the API answering 200 through the restarted Cube", func() bool {
		return seedLoad(t, api) == http.StatusOK
	})
	if again, err := childNamed(devstack, "server.js"); err != nil || again == cube {
		t.Errorf("after the restart, Cube's pid is %d (%v); it was %d", again, err, cube)
	}
}

// childNamed is the pid of parent's child process whose command line
// holds name.
func childNamed(parent int, name string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ")".
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmdline, []byte(name)) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child of %d runs %s", parent, name)
}

// checkMetrics reads the seed example's log line as CloudWatch would.
func checkMetrics(t *testing.T, logs *logcheck.Buffer) {
	t.Helper()
	var line string
	wait.Until(t, "the load request's log line", func() bool {
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"endpoint":"load"`) {
				line = l
				return true
			}
		}
		return false
	})
	data, err := emf.Extract([]byte(line))
	if err != nil {
		t.Fatalf("%v\n%s", err, line)
	}
	var got []string
	for _, d := range data {
		if d.Namespace != metrics.DefaultNamespace {
			t.Errorf("%s in namespace %q, want %q", d.Name, d.Namespace, metrics.DefaultNamespace)
		}
		if d.Name == metrics.Requests && d.Dimensions[metrics.Endpoint] == "load" && d.Dimensions[metrics.StatusClass] == "2xx" {
			got = append(got, d.Name)
		}
		if d.Name == metrics.CubeLatency && len(d.Dimensions) == 0 && d.Values[0] > 0 {
			got = append(got, d.Name)
		}
	}
	if !slices.Equal(got, []string{metrics.Requests, metrics.CubeLatency}) {
		t.Errorf("got %v from %s; want Requests of a 2xx load and its CubeLatency", got, line)
	}
}

// checkSAM checks the sam local environment file the run wrote, and the
// commands it printed.
func checkSAM(t *testing.T, banner, path, cubePort, moto string) {
	t.Helper()
	f, err := samlocal.ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	motoPort := moto[strings.LastIndex(moto, ":")+1:]
	for k, want := range map[string]string{
		"CUBE_API_URL":                     "http://host.docker.internal:" + cubePort,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://host.docker.internal:" + motoPort,
		"CUBE_API_KEY_SECRET_ID":           stack.CubeKeySecret,
	} {
		if got := f[samlocal.AllFunctions][k]; got != want {
			t.Errorf("%s: %s is %q, want %q", path, k, got, want)
		}
	}
	if got := f["LoadFunction"]["AUTH_JWT_SECRET_ID"]; got != stack.CallerKeySecret {
		t.Errorf("%s: LoadFunction's AUTH_JWT_SECRET_ID is %q, want %q", path, got, stack.CallerKeySecret)
	}
	for _, c := range samlocal.Commands(path, runtime.GOOS == "linux", 0)[:3] {
		if !strings.Contains(banner, c) {
			t.Errorf("the banner lacks %q:\n%s", c, banner)
		}
	}
}

// checkReachableBeyondLoopback dials port on an address of this machine
// other than loopback, as a container would reach it.
func checkReachableBeyondLoopback(t *testing.T, port string) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.To4() == nil {
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ipnet.IP.String(), port), 5*time.Second)
		if err != nil {
			t.Errorf("port %s on %s (listening on every address): %v", port, ipnet.IP, err)
			return
		}
		c.Close()
		return
	}
	t.Log("this machine has no address but loopback: reaching the stack from elsewhere is not checked")
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

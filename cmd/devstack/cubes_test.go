package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/samlocal"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/deploy"
)

// TestRunWithSeveralCubes runs `devstack run` as `make run CUBES=2` does:
// two Cubes, each a deployment the API routes to, both in the banner and in
// the sam local environment, each supervised, all stopped on SIGTERM.
func TestRunWithSeveralCubes(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "-data", filepath.Join(dir, "data", "events"))
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CUBES=2", "PORT=0", "CUBE_PORT=0", "CUBE_PLACEMENTS=1=cube-1", "METRICS_NAMESPACE=")
	output, logs := &logcheck.Buffer{}, &logcheck.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	bannerRE := regexp.MustCompile(`ready at http://(127\.0\.0\.1:\d+) .*\(2 Cubes: cube-1 at http://(127\.0\.0\.1:\d+), cube-2 at http://(127\.0\.0\.1:\d+); each project goes to one`)
	var banner []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := wait.For(ctx, "the ready banner of two Cubes", func() bool {
		banner = bannerRE.FindStringSubmatch(output.String())
		return banner != nil
	}); err != nil {
		t.Fatalf("%v:\n%s", err, output.String())
	}
	api, cubes := "http://"+banner[1], banner[2:]
	if status := seedLoad(t, api); status != 200 {
		t.Fatalf("seed example of project 1 (placed on cube-1): %d", status)
	}

	f, err := samlocal.ReadEnvFile(filepath.Join(dir, "data", "sam-env.json"))
	if err != nil {
		t.Fatal(err)
	}
	deps, err := deploy.Parse(f[samlocal.AllFunctions]["CUBE_DEPLOYMENTS"])
	if err != nil || len(deps) != 2 {
		t.Fatalf("sam local's CUBE_DEPLOYMENTS: %v %+v", err, deps)
	}
	for i, d := range deps {
		_, port, _ := net.SplitHostPort(cubes[i])
		if d.URL != "http://host.docker.internal:"+port || d.Name != []string{"cube-1", "cube-2"}[i] || d.KeySecretID == "" {
			t.Errorf("sam local's deployment %d: %+v; the stack's Cube is at %s", i, d, cubes[i])
		}
	}
	if deps[0].KeySecretID == deps[1].KeySecretID || deps[0].KeySecretID != stack.CubeKeySecret {
		t.Errorf("the deployments' key secrets: %s, %s", deps[0].KeySecretID, deps[1].KeySecretID)
	}
	if f[samlocal.AllFunctions]["CUBE_PLACEMENTS"] != "1=cube-1" || f[samlocal.AllFunctions]["CUBE_API_URL"] != "" {
		t.Errorf("sam local's environment: %v", f[samlocal.AllFunctions])
	}

	// Each Cube is supervised: the one killed comes back, named in the log.
	cube, err := childNamed(cmd.Process.Pid, "server.js")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(cube, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restarted := regexp.MustCompile(`"msg":"cube restarted","deployment":"cube-[12]"`)
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer rcancel()
	if err := wait.For(rctx, "the log of one Cube's restart", func() bool { return restarted.MatchString(logs.String()) }); err != nil {
		t.Fatalf("%v: %.2000s", err, logs.String())
	}
	wait.Until(t, "project 1 answered again", func() bool { return seedLoad(t, api) == 200 })

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devstack run did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devstack run did not stop within 30 s of SIGTERM")
	}
	for _, addr := range append([]string{strings.TrimPrefix(api, "http://")}, cubes...) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after devstack run stopped", addr)
		}
	}
}

package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// process is a child process of the stack, in a process group of its own
// that dies with the stack.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	// Pdeathsig: a stack killed without cleanup leaves no orphan behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the process group to end, then kills it if it lingers.
func (p *process) stop() error {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("process %d did not exit", p.cmd.Process.Pid)
	}
}

// startCube runs cube/server.js and waits until it is ready.
func startCube(ctx context.Context, o Options, port int) (*process, error) {
	cmd := exec.Command("node", "server.js")
	cmd.Dir = CubeDir(o.Root)
	db, err := filepath.Abs(o.DB)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"CUBEJS_API_SECRET="+LocalCubeKey,
		"CUBE_DB_PATH="+db,
		"CUBE_PORT="+strconv.Itoa(port),
		"CUBE_CONTINUE_WAIT_TIMEOUT="+strconv.Itoa(max(1, int(o.ContinueWait/time.Second))),
	)
	if o.TestModel {
		env = append(env, "CUBE_TEST_MODEL=1", "CUBE_TEST_SLOW_MS="+strconv.FormatInt(o.SlowQuery.Milliseconds(), 10))
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = o.CubeLog, o.CubeLog
	p, err := startProcess(cmd)
	if err != nil {
		return nil, fmt.Errorf("starting Cube (node cube/server.js): %w", err)
	}
	if err := waitReady(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/readyz", p.exited, 60*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("Cube: %w", err)
	}
	return p, nil
}

// waitReady polls url until it answers 200, the process exits, or timeout.
func waitReady(ctx context.Context, url string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready (see its log)")
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

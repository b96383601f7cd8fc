// Package child runs the helper processes of the local stack and the tests
// (moto_server, Cube, the Lambda runtime interface emulator): each in a
// process group of its own, with its output kept, stopped with whatever it
// started, and never outliving the process that started it.
package child

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"sync"
	"time"
)

// KeptOutput is how much of a process's latest output Output keeps: enough
// for an error message and the tests' checks, and a bound on the memory of
// a helper that logs every request for hours (Cube under `make run`).
const KeptOutput = 1 << 20

// Process is a running child process.
type Process struct {
	cmd    *exec.Cmd
	out    tail
	exited chan struct{} // closed once the process has been reaped
	once   sync.Once
	err    error
}

// Start starts cmd with its output kept (Output) and, when also is not nil,
// copied there as it comes.
func Start(cmd *exec.Cmd, also io.Writer) (*Process, error) {
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	var w io.Writer = &p.out
	if also != nil {
		w = io.MultiWriter(&p.out, also)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// Without it, Wait would block on the output pipe for as long as any
	// descendant that inherited it is alive.
	cmd.WaitDelay = time.Second
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Output is what the process has printed so far: its last KeptOutput
// bytes.
func (p *Process) Output() string { return p.out.String() }

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// tail keeps the last KeptOutput bytes written to it in a ring of that
// size, so that a helper logging for days costs neither more memory nor a
// copy of everything kept at each write. It is safe for concurrent writers.
type tail struct {
	mu   sync.Mutex
	b    []byte // grows to KeptOutput, then is written round
	next int    // where the next byte goes once b is full
}

// Write implements io.Writer.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if n >= KeptOutput {
		// Only its end is kept.
		if cap(t.b) < KeptOutput {
			t.b = make([]byte, 0, KeptOutput)
		}
		t.b = append(t.b[:0], p[n-KeptOutput:]...)
		t.next = 0
		return n, nil
	}
	if room := KeptOutput - len(t.b); room > 0 {
		k := min(room, len(p))
		if len(t.b)+k > cap(t.b) {
			// Grown by hand, so that the array never exceeds KeptOutput.
			grown := make([]byte, len(t.b), min(KeptOutput, max(2*cap(t.b), len(t.b)+k, 4096)))
			copy(grown, t.b)
			t.b = grown
		}
		t.b = append(t.b, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		k := copy(t.b[t.next:], p)
		p = p[k:]
		t.next = (t.next + k) % KeptOutput
	}
	return n, nil
}

// String returns the bytes kept, oldest first.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) < KeptOutput {
		return string(t.b)
	}
	return string(t.b[t.next:]) + string(t.b[:t.next])
}

// Freeze stops the process group without ending it (SIGSTOP), as a hung
// process would be: its sockets stay open and unanswered. Thaw resumes it.
func (p *Process) Freeze() error { return freeze(p.cmd.Process) }

// Thaw resumes a frozen process group (SIGCONT).
func (p *Process) Thaw() error { return thaw(p.cmd.Process) }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitStatus says how the process ended ("exit status 1", "signal:
// killed"); it is empty while the process runs.
func (p *Process) ExitStatus() string {
	select {
	case <-p.exited:
	default:
		return ""
	}
	if p.cmd.ProcessState == nil {
		return ""
	}
	return p.cmd.ProcessState.String()
}

// Stop asks the process group to end (SIGTERM), kills it after grace, and
// waits until the process has exited. It is safe to call more than once.
func (p *Process) Stop(grace time.Duration) error {
	p.once.Do(func() {
		if grace > 0 {
			terminate(p.cmd.Process)
			select {
			case <-p.exited:
				return
			case <-time.After(grace):
			}
		}
		kill(p.cmd.Process)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.err = fmt.Errorf("%s (pid %d) did not exit after being killed", p.cmd.Path, p.cmd.Process.Pid)
		}
	})
	return p.err
}

// WaitReady polls ready until it reports true, the process exits, or ctx
// ends.
func (p *Process) WaitReady(ctx context.Context, every time.Duration, ready func(context.Context) bool) error {
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v)", p.cmd.Path, p.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%s was not ready: %w", p.cmd.Path, ctx.Err())
		case <-time.After(every):
		}
	}
}

// WaitOutput waits until the process's output matches re, and returns the
// match and its submatches; it fails when the process exits or ctx ends
// first. Servers started on port 0 print the port they bound this way.
func (p *Process) WaitOutput(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	var m []string
	err := p.WaitReady(ctx, 10*time.Millisecond, func(context.Context) bool {
		m = re.FindStringSubmatch(p.Output())
		return m != nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for %q in its output: %w", re, err)
	}
	return m, nil
}

// HTTPOK is a WaitReady probe: url answers 200.
func HTTPOK(url string) func(context.Context) bool {
	client := &http.Client{Timeout: time.Second}
	return func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// Listening is a WaitReady probe: addr accepts TCP connections.
func Listening(addr string) func(context.Context) bool {
	d := net.Dialer{Timeout: 100 * time.Millisecond}
	return func(ctx context.Context) bool {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// FreePorts returns n distinct free ports of 127.0.0.1. Another process may
// take one before the caller binds it; callers retry on that.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var errs []error
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			errs = append(errs, err)
			break
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	return ports, nil
}

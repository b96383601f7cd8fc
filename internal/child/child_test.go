//go:build linux

package child

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"productanalytics/internal/wait"
)

func TestStopEndsTheWholeGroup(t *testing.T) {
	// The shell starts a grandchild and prints its pid, then waits.
	p, err := Start(exec.Command("sh", "-c", "sleep 300 & echo $!; wait"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	wait.Until(t, "the grandchild's pid in the output", func() bool {
		pid, _ = strconv.Atoi(strings.TrimSpace(p.Output()))
		return pid != 0
	})
	if err := p.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	// Killed with its group; its new parent reaps it in its own time.
	defer syscall.Kill(pid, syscall.SIGKILL)
	wait.Until(t, fmt.Sprintf("the grandchild %d to end with its group", pid), func() bool { return !alive(pid) })
}

// alive reports whether pid runs; a zombie waiting for its new parent to
// reap it has already ended.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestStopKillsWhatIgnoresTerm(t *testing.T) {
	p, err := Start(exec.Command("sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, `the shell to print "ready" once its trap is set`, func() bool { return strings.Contains(p.Output(), "ready") })
	start := time.Now()
	if err := p.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Stop itself bounds the wait after the kill (10 s): it returned without
	// error, so the kill worked; it cannot have returned before the grace.
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("Stop took %s; want the grace period, then a kill", took)
	}
}

func TestWaitReady(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	ctx := context.Background()
	if !HTTPOK(srv.URL+"/ready")(ctx) || HTTPOK(srv.URL+"/starting")(ctx) || !Listening(ln.Addr().String())(ctx) {
		t.Fatal("a probe is wrong")
	}

	p, err := Start(exec.Command("sh", "-c", "echo bye; exit 3"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(ctx, 10*time.Millisecond, func(context.Context) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("WaitReady on a process that exits: %v", err)
	}
	if p.Output() != "bye\n" {
		t.Fatalf("output %q", p.Output())
	}

	p, _ = Start(exec.Command("sleep", "30"), nil)
	defer p.Stop(0)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := p.WaitReady(short, 10*time.Millisecond, func(context.Context) bool { return false }); err == nil {
		t.Fatal("WaitReady outlived its context")
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(3)
	if err != nil || len(ports) != 3 || ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Fatalf("FreePorts(3) = %v, %v", ports, err)
	}
}

// TestOutputKeepsTheLatest checks that a process that prints for long keeps
// only its latest output, in order, in an array that never outgrows the
// bound, whatever the sizes of its writes.
func TestOutputKeepsTheLatest(t *testing.T) {
	line := func(i int) string { return fmt.Sprintf("%09d%s\n", i, strings.Repeat("x", 990)) }
	tests := []struct {
		name   string
		writes func(yield func(string))
	}{
		{"short output", func(yield func(string)) { yield("hello\n"); yield("world\n") }},
		{"lines past the bound", func(yield func(string)) {
			for i := range 3 * KeptOutput / 1000 {
				yield(line(i))
			}
		}},
		{"exactly the bound", func(yield func(string)) { yield(strings.Repeat("a", KeptOutput)) }},
		{"one write larger than the bound", func(yield func(string)) {
			yield("before\n")
			yield(strings.Repeat("b", KeptOutput/2) + strings.Repeat("c", KeptOutput))
		}},
		{"odd sizes across the wrap", func(yield func(string)) {
			for i := range 5000 {
				yield(strings.Repeat(string(rune('a'+i%26)), 1+i*7%1531))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out tail
			var all strings.Builder
			tt.writes(func(s string) {
				all.WriteString(s)
				if n, err := out.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(s))
				}
			})
			want := all.String()
			want = want[max(0, len(want)-KeptOutput):]
			if got := out.String(); got != want {
				t.Errorf("kept %d bytes ending %q; want the last %d ending %q", len(got), got[max(0, len(got)-20):], len(want), want[max(0, len(want)-20):])
			}
			if cap(out.b) > KeptOutput {
				t.Errorf("holds an array of %d bytes; want at most %d", cap(out.b), KeptOutput)
			}
		})
	}
}

// Serves tells the child's own listener from another process's on the
// same address.
func TestServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	theirs := ln.Addr().String()
	p, err := Start(exec.Command("python3", "-c", `import socket,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)`), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(0)
	var port string
	wait.Until(t, "the child's port", func() bool {
		port = strings.TrimSpace(p.Output())
		return port != ""
	})
	ctx := context.Background()
	if !p.Serves("127.0.0.1:" + port)(ctx) {
		t.Error("the child's own listener is not recognised")
	}
	if p.Serves(theirs)(ctx) {
		t.Error("another process's listener is taken for the child's")
	}
}

func TestFreezeAndThaw(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmd  []string
	}{
		// Its state goes straight to T.
		{"python", []string{"python3", "-c", "import time\nprint('ready', flush=True)\nwhile True:\n  print('tick', flush=True)\n  time.sleep(0.01)"}},
		// dash vforks each command: the stop can catch its child before
		// exec, and the shell then waits in D for as long as it stays stopped.
		{"vforking shell", []string{"sh", "-c", "echo ready; while :; do echo tick; sleep 0.01; done"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(exec.Command(tt.cmd[0], tt.cmd[1:]...), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop(0)
			wait.Until(t, "the first tick", func() bool { return strings.Contains(p.Output(), "tick") })
			pid := p.Pid()
			if err := p.Freeze(); err != nil {
				t.Fatal(err)
			}
			// Freeze returns once the kernel has stopped the group: every
			// member stopped, or waiting uninterruptibly on one that is.
			states := groupStates(pid)
			if !strings.Contains(states, "T") || strings.Trim(states, "TDZ") != "" {
				t.Fatalf("process group %d is in states %q after Freeze; want all T (stopped), D or Z, at least one T", pid, states)
			}
			// A stopped process is never switched in, so this count only
			// moves again once it runs.
			switches := contextSwitches(t, pid)
			if err := p.Thaw(); err != nil {
				t.Fatal(err)
			}
			wait.Until(t, fmt.Sprintf("process %d to run again", pid), func() bool { return contextSwitches(t, pid) > switches })
		})
	}
}

// contextSwitches is how many times pid's main thread has given up the CPU.
func contextSwitches(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if n, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			v, err := strconv.Atoi(strings.TrimSpace(n))
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no voluntary_ctxt_switches in /proc/%d/status", pid)
	return 0
}

package child

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// setProcAttr puts the child in a process group of its own, so that Stop
// reaches whatever it started, and has the kernel end it when its parent
// dies without cleaning up (a test binary timing out, `make run` killed).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func terminate(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGTERM); err != nil {
		p.Signal(syscall.SIGTERM)
	}
}

func kill(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		p.Kill()
	}
}

// freeze returns once the kernel reports every process of the group
// stopped, so that nothing the caller does afterwards can reach it still
// running. One in uninterruptible sleep counts as stopped too: it runs none
// of its own code before it stops. A shell that vforks (dash) waits there
// for as long as its child, stopped before exec, stays stopped.
func freeze(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stopping process group %d: %w", p.Pid, err)
	}
	var states string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		states = groupStates(p.Pid)
		if strings.Trim(states, "TtDZX") == "" {
			return nil
		}
	}
	return fmt.Errorf("process group %d was not stopped 10 s after SIGSTOP (states %q)", p.Pid, states)
}

// groupStates is the one-letter states (R, S, T for stopped...) of the
// processes in process group pgid, read from /proc.
func groupStates(pgid int) string {
	dirs, _ := os.ReadDir("/proc")
	want := strconv.Itoa(pgid)
	var states strings.Builder
	for _, d := range dirs {
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // not a process, or one that has just ended
		}
		// The fields follow the command's name, which may itself hold ") ".
		i := bytes.LastIndex(stat, []byte(") "))
		if i < 0 {
			continue
		}
		// state ppid pgrp ...
		if f := strings.Fields(string(stat[i+2:])); len(f) > 2 && f[2] == want {
			states.WriteString(f[0])
		}
	}
	return states.String()
}

func thaw(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("resuming process group %d: %w", p.Pid, err)
	}
	return nil
}

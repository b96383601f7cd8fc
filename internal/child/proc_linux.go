package child

import (
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

// freeze returns once the kernel reports the process stopped, so that
// nothing the caller does afterwards can reach it still running.
func freeze(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stopping process group %d: %w", p.Pid, err)
	}
	stat := "/proc/" + strconv.Itoa(p.Pid) + "/stat"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil {
			return fmt.Errorf("reading the state of process %d: %w", p.Pid, err)
		}
		if _, rest, _ := strings.Cut(string(b), ") "); strings.HasPrefix(rest, "T") {
			return nil
		}
	}
	return fmt.Errorf("process %d was not stopped 10 s after SIGSTOP", p.Pid)
}

func thaw(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("resuming process group %d: %w", p.Pid, err)
	}
	return nil
}

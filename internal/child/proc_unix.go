//go:build unix && !linux

package child

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in a process group of its own, so that Stop
// reaches whatever it started. (Only Linux can also end it with its parent.)
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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

func freeze(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stopping process group %d: %w", p.Pid, err)
	}
	return nil
}

func thaw(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("resuming process group %d: %w", p.Pid, err)
	}
	return nil
}

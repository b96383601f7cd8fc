//go:build unix && !linux

package child

import (
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

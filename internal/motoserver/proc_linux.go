package motoserver

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts the emulator in a process group of its own, so that Close
// can kill whatever it spawned too, and has the kernel kill it if the test
// binary dies first (a test timeout panics past every cleanup).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func kill(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}

package rie

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel kill the emulator if the test binary dies
// first (a test timeout panics past every cleanup). The emulator puts the
// bootstrap in a process group of its own and kills it when it stops; a
// bootstrap that outlives a killed emulator exits when its runtime API
// connection breaks.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }

func kill(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}

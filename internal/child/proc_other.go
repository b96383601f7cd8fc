//go:build !unix

package child

import (
	"os"
	"os/exec"
	"syscall"
)

func setProcAttr(*exec.Cmd) {}

func terminate(p *os.Process) { p.Signal(syscall.SIGTERM) }

func kill(p *os.Process) { p.Kill() }

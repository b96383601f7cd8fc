//go:build !linux

package rie

import (
	"os"
	"os/exec"
	"syscall"
)

func setProcAttr(*exec.Cmd) {}

func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }

func kill(p *os.Process) { _ = p.Kill() }

//go:build !linux

package motoserver

import (
	"os"
	"os/exec"
)

func setProcAttr(*exec.Cmd) {}

func kill(p *os.Process) { _ = p.Kill() }

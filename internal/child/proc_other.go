//go:build !unix

package child

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func setProcAttr(*exec.Cmd) {}

func terminate(p *os.Process) { p.Signal(syscall.SIGTERM) }

func kill(p *os.Process) { p.Kill() }

// Without process signals, a process cannot be frozen here.
func freeze(*os.Process) error { return fmt.Errorf("freezing a process: %w", errors.ErrUnsupported) }

func thaw(*os.Process) error { return fmt.Errorf("resuming a process: %w", errors.ErrUnsupported) }

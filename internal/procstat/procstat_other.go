//go:build !linux

package procstat

import (
	"errors"
	"fmt"
)

// Of is not available without Linux's /proc: reports then say n/a.
func Of(pid int) (Stat, error) {
	return Stat{}, fmt.Errorf("reading process %d: %w", pid, errors.ErrUnsupported)
}

// Children is not available without Linux's /proc.
func Children(pid int) ([]Proc, error) {
	return nil, fmt.Errorf("listing the children of process %d: %w", pid, errors.ErrUnsupported)
}

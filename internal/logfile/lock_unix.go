//go:build unix

package logfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// errBusy: another process holds the lock.
var errBusy = errors.New("held by another process")

// tryLock takes an exclusive lock on path without waiting, and returns its
// release; errBusy when another process holds it. The kernel drops the
// lock with the process, however it ends.
func tryLock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errBusy
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

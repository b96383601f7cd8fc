//go:build !unix

package stack

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// lockFile takes an exclusive lock on path, waiting for it, and returns its
// release: without flock, the lock is the file's existence.
func lockFile(path string) (func(), error) {
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		f, err := os.OpenFile(path+".held", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return func() { os.Remove(path + ".held") }, nil
		}
		if !errors.Is(err, os.ErrExist) || time.Since(start) > 10*time.Minute {
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
	}
}

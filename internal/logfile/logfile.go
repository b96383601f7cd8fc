// Package logfile writes a helper process's log (the local Cube's) to a
// file that is rotated when a run starts and when it reaches a size bound,
// so that a stack left running for days, or started again and again, keeps
// a bounded amount of disk; and that a second stack never rotates away the
// log of one still running.
package logfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// DefaultMaxBytes is the size at which a log is rotated: the file and its
// one previous generation (".1") together hold at most twice this.
const DefaultMaxBytes = 32 << 20

// maxVariants bounds how many stacks at once get a log of their own.
const maxVariants = 9

// File is an open log. It is safe for concurrent writers.
type File struct {
	path   string
	max    int64
	unlock func()

	mu   sync.Mutex
	f    *os.File
	size int64
	err  error
}

// Open starts a new log at path, whose previous content becomes path.1,
// and rotates it again whenever it would pass maxBytes (DefaultMaxBytes
// when 0). While another running process holds path, the first free of
// its variants (cube-2.log, cube-3.log ...) is taken instead: its log is
// left as it is. Path tells which file was taken.
func Open(path string, maxBytes int64) (*File, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	for i := 1; i <= maxVariants; i++ {
		p := variant(path, i)
		unlock, err := tryLock(p + ".lock")
		if errors.Is(err, errBusy) {
			continue
		}
		if err != nil {
			return nil, err
		}
		l := &File{path: p, max: maxBytes, unlock: unlock}
		if err := l.rotate(); err != nil {
			unlock()
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("opening the log %s: %d running processes hold it and its variants", path, maxVariants)
}

// variant is path for i = 1, else path with -i before its extension.
func variant(path string, i int) string {
	if i == 1 {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + strconv.Itoa(i) + ext
}

// Path is the file written.
func (l *File) Path() string { return l.path }

// Write appends p, rotating first when p would take the file past its
// bound. A write larger than the bound goes whole into a new file.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := l.rotateLocked(); err != nil {
			l.err = err
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// Close closes the file and lets another run take it.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	if l.unlock != nil {
		l.unlock()
		l.unlock = nil
	}
	if l.err == nil {
		l.err = os.ErrClosed
	}
	return err
}

func (l *File) rotate() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rotateLocked()
}

// rotateLocked moves the current file, if it holds anything, to path.1
// (replacing the one before) and starts an empty one.
func (l *File) rotateLocked() error {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if fi, err := os.Stat(l.path); err == nil && fi.Size() > 0 {
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("rotating the log %s: %w", l.path, err)
		}
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("opening the log %s: %w", l.path, err)
	}
	l.f, l.size = f, 0
	return nil
}

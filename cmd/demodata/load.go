package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// projectFile is one project's CSV, as handed to the loader.
type projectFile struct {
	id   int64
	path string
}

// Loader loads project CSVs into a new DuckDB file at dbPath. It is an
// interface so tests can exercise the atomic replace without node.
type Loader interface {
	Load(ctx context.Context, dbPath string, files []projectFile) error
}

// nodeLoader runs cube's load-events.js, which owns the table DDL and the
// DuckDB driver, so this command needs neither cgo nor a DuckDB library.
type nodeLoader struct {
	node   string
	script string
	stdout io.Writer
	stderr io.Writer
}

// Load runs `node <script> <db> <id>=<csv>...`.
func (l nodeLoader) Load(ctx context.Context, dbPath string, files []projectFile) error {
	args := []string{l.script, dbPath}
	for _, f := range files {
		args = append(args, fmt.Sprintf("%d=%s", f.id, f.path))
	}
	cmd := exec.CommandContext(ctx, l.node, args...)
	cmd.Stdout, cmd.Stderr = l.stdout, l.stderr
	// SIGTERM first lets node close the database cleanly; the kill after
	// WaitDelay covers a loader that ignores it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s: %w", l.node, filepath.Base(l.script), err)
	}
	return nil
}

// loadAtomically loads into <target>.tmp-<pid> and renames it over target
// only when the loader succeeded, so readers (and a crash) only ever see the
// old or the new database, never a half-written one. The temporary file and
// its WAL are removed on any failure, including cancellation.
func loadAtomically(ctx context.Context, l Loader, target string, files []projectFile) error {
	tmp := fmt.Sprintf("%s.tmp-%d", target, os.Getpid())
	cleanup := func() {
		os.Remove(tmp)
		os.Remove(tmp + ".wal")
	}
	cleanup() // a leftover from a killed run with a recycled pid
	if err := l.Load(ctx, tmp, files); err != nil {
		cleanup()
		return err
	}
	if err := ctx.Err(); err != nil {
		cleanup()
		return err
	}
	if _, err := os.Stat(tmp); err != nil {
		cleanup()
		return fmt.Errorf("loader reported success but wrote no database: %w", err)
	}
	// The old database's WAL would be replayed against the new file.
	if err := os.Remove(target + ".wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		cleanup()
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		cleanup()
		return err
	}
	// A loader that exits without a checkpoint leaves its data in the WAL,
	// which must travel with the file.
	if _, err := os.Stat(tmp + ".wal"); err == nil {
		if err := os.Rename(tmp+".wal", target+".wal"); err != nil {
			return err
		}
	}
	return nil
}

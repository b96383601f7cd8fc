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

	"productanalytics/internal/eventsdb"
)

// projectFile is one project's CSV, as handed to the loader.
type projectFile struct {
	id   int64
	path string
}

// Loader loads one project's CSV into a new DuckDB file at dbPath. It is an
// interface so tests can exercise the atomic replace without node.
type Loader interface {
	Load(ctx context.Context, dbPath string, file projectFile) error
}

// nodeLoader runs cube's load-events.js, which owns the table DDL and the
// DuckDB driver, so this command needs neither cgo nor a DuckDB library.
type nodeLoader struct {
	node   string
	script string
	stdout io.Writer
	stderr io.Writer
}

// Load runs `node <script> <db> <id>=<csv>`.
func (l nodeLoader) Load(ctx context.Context, dbPath string, f projectFile) error {
	cmd := exec.CommandContext(ctx, l.node, l.script, dbPath, fmt.Sprintf("%d=%s", f.id, f.path))
	cmd.Stdout, cmd.Stderr = l.stdout, l.stderr
	// SIGTERM first lets node stop cleanly; the kill after WaitDelay covers
	// a loader that ignores it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s for project %d: %w", l.node, filepath.Base(l.script), f.id, err)
	}
	return nil
}

// loadAtomically loads each project into <dir>/project_<id>.duckdb.tmp-<pid>
// and, only once every load succeeded, renames each over its target: readers
// (and a crash) see a project's old or new file, never a half-written one,
// and a failed run replaces none. The temporary files and their WALs are
// removed on any failure, including cancellation. Other files in dir are
// left alone.
func loadAtomically(ctx context.Context, l Loader, dir string, files []projectFile) error {
	type target struct{ tmp, final string }
	targets := make([]target, len(files))
	for i, f := range files {
		final := eventsdb.Path(dir, f.id)
		targets[i] = target{tmp: fmt.Sprintf("%s.tmp-%d", final, os.Getpid()), final: final}
	}
	cleanup := func() {
		for _, t := range targets {
			os.Remove(t.tmp)
			os.Remove(t.tmp + ".wal")
		}
	}
	cleanup() // leftovers from a killed run with a recycled pid
	for i, f := range files {
		if err := l.Load(ctx, targets[i].tmp, f); err != nil {
			cleanup()
			return err
		}
		if err := ctx.Err(); err != nil {
			cleanup()
			return err
		}
		if _, err := os.Stat(targets[i].tmp); err != nil {
			cleanup()
			return fmt.Errorf("the loader reported success for project %d but wrote no database: %w", f.id, err)
		}
	}
	for _, t := range targets {
		if err := replace(t.tmp, t.final); err != nil {
			cleanup()
			return err
		}
	}
	return nil
}

// replace renames tmp (and its WAL, if any) over final.
func replace(tmp, final string) error {
	// The old database's WAL would be replayed against the new file.
	if err := os.Remove(final + ".wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the old WAL: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("moving the new database into place: %w", err)
	}
	// A loader that exits without a checkpoint leaves its data in the WAL,
	// which must travel with the file.
	if _, err := os.Stat(tmp + ".wal"); err == nil {
		if err := os.Rename(tmp+".wal", final+".wal"); err != nil {
			return fmt.Errorf("moving the new database's WAL into place: %w", err)
		}
	}
	return nil
}

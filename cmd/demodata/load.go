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

// loadJob is one project's CSV and the new DuckDB file it goes into.
type loadJob struct {
	dbPath string
	file   projectFile
}

// Loader loads each job's CSV into a new DuckDB file at its dbPath, in order,
// and stops at the first failure. It is an interface so tests can exercise
// the atomic replace without node.
type Loader interface {
	Load(ctx context.Context, jobs []loadJob) error
}

// loadBatch is how many projects one node process loads: starting node and
// the DuckDB binding is most of a small project's load, and the command
// line stays far below the system's bound on arguments.
const loadBatch = 100

// nodeLoader runs cube's load-events.js, which owns the table DDL and the
// DuckDB driver, so this command needs neither cgo nor a DuckDB library.
type nodeLoader struct {
	node   string
	script string
	stdout io.Writer
	stderr io.Writer
}

// Load runs `node <script> <db> <id>=<csv> ...`, loadBatch projects a run.
func (l nodeLoader) Load(ctx context.Context, jobs []loadJob) error {
	for start := 0; start < len(jobs); start += loadBatch {
		batch := jobs[start:min(start+loadBatch, len(jobs))]
		args := []string{l.script}
		for _, j := range batch {
			args = append(args, j.dbPath, fmt.Sprintf("%d=%s", j.file.id, j.file.path))
		}
		cmd := exec.CommandContext(ctx, l.node, args...)
		cmd.Stdout, cmd.Stderr = l.stdout, l.stderr
		// SIGTERM first lets node stop cleanly; the kill after WaitDelay
		// covers a loader that ignores it.
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s %s for projects %d to %d: %w", l.node, filepath.Base(l.script), batch[0].file.id, batch[len(batch)-1].file.id, err)
		}
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
	jobs := make([]loadJob, len(files))
	for i, f := range files {
		jobs[i] = loadJob{dbPath: fmt.Sprintf("%s.tmp-%d", eventsdb.Path(dir, f.id), os.Getpid()), file: f}
	}
	cleanup := func() {
		for _, j := range jobs {
			os.Remove(j.dbPath)
			os.Remove(j.dbPath + ".wal")
			// What a loader stopped half way leaves beside the file:
			// a large project's staging copy and the sort's spill.
			os.Remove(j.dbPath + ".staging")
			os.Remove(j.dbPath + ".staging.wal")
			os.RemoveAll(j.dbPath + ".tmp")
		}
	}
	cleanup() // leftovers from a killed run with a recycled pid
	if err := l.Load(ctx, jobs); err != nil {
		cleanup()
		return err
	}
	if err := ctx.Err(); err != nil {
		cleanup()
		return err
	}
	for _, j := range jobs {
		if _, err := os.Stat(j.dbPath); err != nil {
			cleanup()
			return fmt.Errorf("the loader reported success for project %d but wrote no database: %w", j.file.id, err)
		}
	}
	for _, j := range jobs {
		if err := replace(j.dbPath, eventsdb.Path(dir, j.file.id)); err != nil {
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

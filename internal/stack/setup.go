package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"productanalytics/internal/web"
)

// Root finds the project's root folder: the nearest folder above dir that
// holds go.mod.
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// InstallCube installs Cube's node modules when they are missing or older
// than the lockfile. Install scripts are skipped: Cube Store's would fetch a
// binary the local stack does not use.
func InstallCube(ctx context.Context, root string, log io.Writer) error {
	return npmCI(ctx, CubeDir(root), "Cube's node modules (npm ci, about half a minute)", log)
}

// InstallPage installs the dashboards page's libraries (web/node_modules)
// when they are missing or older than the lockfile.
func InstallPage(ctx context.Context, root string, log io.Writer) error {
	return npmCI(ctx, filepath.Join(root, web.Dir), "the dashboards page's libraries (npm ci, a few seconds)", log)
}

// npmCI runs npm ci in dir unless its node modules are up to date. No
// install script runs: none of the packages needs one.
func npmCI(ctx context.Context, dir, what string, log io.Writer) error {
	if installed(dir) {
		return nil
	}
	// npm ci starts by deleting node_modules: two at once (make test runs
	// test packages in parallel) would break each other's install.
	unlock, err := lockFile(filepath.Join(dir, ".install.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if installed(dir) {
		return nil // another process installed them while we waited
	}
	fmt.Fprintf(log, "installing %s...\n", what)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w", filepath.Base(dir), err)
	}
	return nil
}

// installed reports whether the node modules of dir are there and not
// older than its lockfile.
func installed(dir string) bool {
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	mods, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	return err == nil && !mods.ModTime().Before(lock.ModTime())
}

// lockFile takes an exclusive lock on path, waiting for it, and returns
// its release.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// GenerateData writes the demo events into db when it does not exist yet.
// The generator loads into a temporary file and renames it, so an
// interrupted run never leaves a half-written database.
func GenerateData(ctx context.Context, root, db string, log io.Writer, args ...string) error {
	if _, err := os.Stat(db); err == nil {
		return nil
	}
	abs, err := filepath.Abs(db)
	if err != nil {
		return err
	}
	fmt.Fprintln(log, "generating demo data...")
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/demodata", "-db", abs}, args...)...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("generating demo data: %w", err)
	}
	return nil
}

package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"productanalytics/internal/eventsdb"
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
	return InstallNodeModules(ctx, CubeDir(root), "Cube's node modules (npm ci, about half a minute)", log)
}

// InstallPage installs the dashboards page's libraries (web/node_modules)
// when they are missing or older than the lockfile.
func InstallPage(ctx context.Context, root string, log io.Writer) error {
	return InstallNodeModules(ctx, filepath.Join(root, web.Dir), "the dashboards page's libraries (npm ci, a few seconds)", log)
}

// InstallNodeModules runs npm ci in dir unless its node modules are up to
// date with its lockfile, saying so to log as what. No install script
// runs: none of the packages needs one.
func InstallNodeModules(ctx context.Context, dir, what string, log io.Writer) error {
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

// TestData readies what a test's stack needs: Cube's node modules, and a
// new temporary folder named after prefix whose events/ folder holds demo
// data generated with args (cmd/demodata's flags). The caller removes tmp.
func TestData(ctx context.Context, root, prefix string, log io.Writer, args ...string) (tmp, dataDir string, err error) {
	if tmp, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", err
	}
	dataDir = filepath.Join(tmp, "events")
	if err = InstallCube(ctx, root, log); err == nil {
		err = GenerateData(ctx, root, dataDir, log, args...)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", "", err
	}
	return tmp, dataDir, nil
}

// GenerateData writes the demo events into the folder dir (one DuckDB file
// per project, cmd/demodata's flags args) when it holds no project's file
// yet. The generator loads every project into temporary files and renames
// them into place only once all loaded, so an interrupted run never leaves
// a half-written database. Data it generated records the
// version of the generator and loader that made it (DataVersion, with
// args) beside the folder; when that is no longer the current one, its
// projects are generated again: an older loader's files lack tables the
// model reads. Projects put there by other means are left alone.
func GenerateData(ctx context.Context, root, dir string, log io.Writer, args ...string) error {
	projects, err := eventsdb.Projects(dir)
	if err != nil {
		return err
	}
	version, err := DataVersion(root)
	if err != nil {
		return err
	}
	version = strings.Join(append([]string{version}, args...), " ")
	stamp := versionFile(dir)
	if len(projects) > 0 {
		made, err := os.ReadFile(stamp)
		if err != nil || string(made) == version {
			return nil // not generated here, or current
		}
		fmt.Fprintln(log, "the demo data was made by another version of the generator or loader: generating it again...")
		for _, p := range projects {
			for _, f := range []string{eventsdb.Path(dir, p), eventsdb.Path(dir, p) + ".wal"} {
				if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("removing the old demo data: %w", err)
				}
			}
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	fmt.Fprintln(log, "generating demo data...")
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/demodata", "-data", abs}, args...)...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("generating demo data: %w", err)
	}
	if err := os.WriteFile(stamp, []byte(version), 0o644); err != nil {
		return fmt.Errorf("recording the demo data's version: %w", err)
	}
	return nil
}

// versionFile holds the version that made the projects in dir: beside the
// folder, not in it, since the folder holds the projects' files only.
func versionFile(dir string) string { return filepath.Clean(dir) + ".version" }

// DemoFunnels is the folder of the demo funnel definitions in the
// repository: one folder per project, <project id>/*.yml, as the local
// stack's funnels folder.
const DemoFunnels = "cube/demo/funnels"

// SeedFunnels copies the demo funnels into dir when dir does not exist
// yet: once there, the folder is the user's, and their edits and
// deletions are kept from one run to the next.
func SeedFunnels(root, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the funnels folder: %w", err)
	}
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, filepath.FromSlash(DemoFunnels)))); err != nil {
		return fmt.Errorf("copying the demo funnels: %w", err)
	}
	return nil
}

package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/stack"
)

// The benchmark's projects: one per size, over the same 90 days, ending
// at a fixed time so that a cached project is the same whenever it was
// generated, and in whole seconds so that the same events load into
// ClickHouse's DateTime too.
const (
	benchSeed    = 7
	benchDays    = 90
	benchProject = 1
)

var benchEnd = time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)

// defaultSizes are the projects make bench-data measures when SIZES is
// not set.
var defaultSizes = []int{100_000, 1_000_000, 10_000_000}

// benchSizes reads SIZES: comma-separated event counts.
func benchSizes(env string) ([]int, error) {
	if strings.TrimSpace(env) == "" {
		return defaultSizes, nil
	}
	var out []int
	for f := range strings.SplitSeq(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n < 1000 {
			return nil, fmt.Errorf("SIZES: %q is not an event count of at least 1000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// dataset is one size's cached data.
type dataset struct {
	size int
	dir  string // its folder under .local/bench-data
	// events is the folder of its DuckDB file (cmd/demodata -data).
	events string
	// generated is how long it took to generate and load, when this run
	// did it; zero when it was cached.
	generated time.Duration
}

// generatorArgs are the generator's flags for the size.
func (d dataset) generatorArgs() []string {
	return []string{
		"-projects", fmt.Sprintf("%d:%d", benchProject, d.size), "-days", strconv.Itoa(benchDays),
		"-seed", strconv.Itoa(benchSeed), "-end", benchEnd.Format(time.RFC3339), "-whole-seconds",
	}
}

// cacheDir is where the benchmark keeps its data.
func cacheDir(root string) string { return filepath.Join(root, ".local", "bench-data") }

// prepareData returns size's project, generating it into the cache when
// it is not there for this version of the generator. Data of the same
// size from another version is removed: it would never be read again.
func prepareData(ctx context.Context, root string, size int, log io.Writer) (dataset, error) {
	version, err := stack.DataVersion(root)
	if err != nil {
		return dataset{}, err
	}
	prefix := fmt.Sprintf("%d-seed%d-", size, benchSeed)
	d := dataset{size: size, dir: filepath.Join(cacheDir(root), prefix+version)}
	d.events = filepath.Join(d.dir, "events")
	if _, err := os.Stat(eventsdb.Path(d.events, benchProject)); err == nil {
		return d, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return dataset{}, err
	}
	stale, _ := filepath.Glob(filepath.Join(cacheDir(root), prefix+"*"))
	for _, old := range stale {
		if old != d.dir {
			fmt.Fprintf(log, "removing %s, made by another version of the generator\n", old)
			if err := os.RemoveAll(old); err != nil {
				return dataset{}, fmt.Errorf("removing old data: %w", err)
			}
		}
	}
	fmt.Fprintf(log, "generating %d events into %s (once; kept for the next runs)...\n", size, d.dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/demodata", "-data", d.events}, d.generatorArgs()...)...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return dataset{}, fmt.Errorf("generating %d events: %w", size, err)
	}
	d.generated = time.Since(start)
	return d, nil
}

// diskBytes is the size of the files under dir.
func diskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

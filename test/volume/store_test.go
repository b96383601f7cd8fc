package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"productanalytics/internal/clickhouse"
	"productanalytics/internal/eventsdb"
	"productanalytics/internal/stack"
)

// loadClickHouse creates project's database on server with the production
// DDL (cube/schema) and loads the generator's CSV into it, as the tests of
// the production store do. It returns how many events the table holds.
func loadClickHouse(ctx context.Context, root string, server *clickhouse.Server, project int64, csvPath string) (int64, error) {
	ddl, err := os.ReadFile(filepath.Join(stack.CubeDir(root), "schema", "snowplow_events.clickhouse.sql"))
	if err != nil {
		return 0, fmt.Errorf("reading the ClickHouse DDL: %w", err)
	}
	return server.LoadEvents(ctx, project, string(ddl), csvPath)
}

// loadDuckDB loads the generator's CSV of project into a new file of the
// folder dir with Cube's loader (cube/scripts/load-events.js), as the
// generator does.
func loadDuckDB(ctx context.Context, root, dir string, project int64, csvPath string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(stack.CubeDir(root), "scripts", "load-events.js"),
		eventsdb.Path(dir, project), fmt.Sprintf("%d=%s", project, csvPath))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("loading %s into DuckDB: %w\n%s", csvPath, err, out)
	}
	return nil
}

// randomKey is a key for the projects' ClickHouse passwords, new each run.
func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") }

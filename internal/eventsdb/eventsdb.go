// Package eventsdb is the layout of the local events store: one DuckDB file
// per project, <dir>/project_<id>.duckdb, holding only that project's schema
// gitlab_project_<id>. The demo data generator writes it, the local Cube
// (cube/tenantdb.js) opens one file per tenant, and the tests read it.
//
// The file is not named gitlab_project_<id>.duckdb: DuckDB names a file's
// catalog after the file, and a catalog gitlab_project_<id> beside the schema
// of that name makes gitlab_project_<id>.snowplow_events ambiguous.
package eventsdb

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
)

// FileName is the name of project's file in the data folder.
func FileName(project int64) string { return fmt.Sprintf("project_%d.duckdb", project) }

// Path is project's file in the data folder dir.
func Path(dir string, project int64) string { return filepath.Join(dir, FileName(project)) }

var projectFile = regexp.MustCompile(`^project_([1-9][0-9]*)\.duckdb$`)

// Projects lists the projects that have a file in dir, in ascending order.
// A missing folder has none.
func Projects(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the events folder: %w", err)
	}
	var ids []int64
	for _, e := range entries {
		m := projectFile.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		if id, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

package eventsdb

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestProjects(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		FileName(2), FileName(10), FileName(1),
		"project_3.duckdb.tmp-123", "project_4.duckdb.wal", "project_05.duckdb", "gitlab_project_6.duckdb", "cube.log",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, FileName(7)), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Projects(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 2, 10}; !slices.Equal(got, want) {
		t.Errorf("Projects = %v, want %v", got, want)
	}
	if got, err := Projects(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("a missing folder: %v, %v", got, err)
	}
	if got := Path("d", 42); got != filepath.Join("d", "project_42.duckdb") {
		t.Errorf("Path = %q", got)
	}
}

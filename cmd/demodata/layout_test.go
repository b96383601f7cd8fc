package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/stack"
)

// sessionsByDefinition is a project's sessions as cube/model/Sessions.js
// defines them (the comment at its top), written here again from that
// definition rather than taken from the DDL, so that the loader's table is
// checked against the definition and not against itself.
const sessionsByDefinition = `
  SELECT domain_sessionid, MIN(domain_userid), MIN(domain_sessionidx),
    MIN(derived_tstamp), MAX(derived_tstamp),
    epoch_ms(MAX(derived_tstamp)) - epoch_ms(MIN(derived_tstamp)),
    MIN(agent_name), MIN(agent_version), MIN(os_family), MIN(os_name), MIN(os_version),
    MIN(os_version_major), MIN(br_lang), MIN(doc_lang), MIN(viewport_size)
  FROM gitlab_project_7.snowplow_events GROUP BY domain_sessionid`

const sessionsTable = `
  SELECT session_id, domain_userid, session_index, start_at, end_at, duration_ms,
    agent_name, agent_version, os_family, os_name, os_version, os_version_major,
    br_lang, doc_lang, viewport_size
  FROM gitlab_project_7.sessions`

// TestLoadedLayout loads a generated project through the real loader
// (cube/scripts/load-events.js) and reads the file back: the sessions table
// holds exactly the defined sessions, and both tables are in time order,
// which is what lets a date range skip the rest.
func TestLoadedLayout(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	args := []string{"-projects", "7:3000", "-end", "2025-01-31T00:00:00Z", "-data", dir, "-cube-dir", "../../cube"}
	if code := run(context.Background(), args, &out, &errOut, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	db := eventsdb.Path(dir, 7)
	tests := []struct {
		name  string
		query string
		want  float64
	}{
		{"sessions missing from the table", `SELECT count(*) AS n FROM (` + sessionsByDefinition + ` EXCEPT ` + sessionsTable + `)`, 0},
		{"sessions in the table not defined", `SELECT count(*) AS n FROM (` + sessionsTable + ` EXCEPT ` + sessionsByDefinition + `)`, 0},
		{"rows of the sessions table over distinct sessions", `SELECT (SELECT count(*) FROM gitlab_project_7.sessions) - (SELECT count(DISTINCT domain_sessionid) FROM gitlab_project_7.snowplow_events) AS n`, 0},
		{"events stored before an earlier one", `SELECT count(*) AS n FROM (SELECT derived_tstamp < lag(derived_tstamp) OVER (ORDER BY rowid) AS back FROM gitlab_project_7.snowplow_events) WHERE back`, 0},
		{"sessions stored before an earlier start", `SELECT count(*) AS n FROM (SELECT start_at < lag(start_at) OVER (ORDER BY rowid) AS back FROM gitlab_project_7.sessions) WHERE back`, 0},
		{"events loaded", `SELECT count(*) AS n FROM gitlab_project_7.snowplow_events`, 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := queryNumber(t, db, tt.query); got != tt.want {
				t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// queryNumber runs query, which answers one row with a number n, on the
// DuckDB file db through cube/scripts/query.js.
func queryNumber(t *testing.T, db, query string) float64 {
	t.Helper()
	cmd := exec.Command("node", filepath.Join("..", "..", "cube", "scripts", "query.js"), db, query)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("query.js: %v\n%s", err, stderr.String())
	}
	var rows []struct{ N float64 }
	if err := json.Unmarshal(out, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("query.js answered %s (%v)", out, err)
	}
	return rows[0].N
}

// TestLoadsCompressedCSV: a project's CSV written gzip-compressed (as the
// generator writes a large project's) loads as the plain one does, sorted
// in parts as a large one is (here of 300 events each), into one table in
// time order.
func TestLoadsCompressedCSV(t *testing.T) {
	t.Setenv("LOAD_EVENTS_PART_ROWS", "300")
	ctx := context.Background()
	// The loader's DuckDB binding: this test may run before anything
	// else installed it.
	var install bytes.Buffer
	if err := stack.InstallNodeModules(ctx, filepath.Join("..", "..", "cube"), "Cube's node modules", &install); err != nil {
		t.Fatalf("%v\n%s", err, install.String())
	}
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "project_8.csv.gz")
	end := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC)
	cfg := ProjectConfig{ID: 8, Events: 2000, Start: end.AddDate(0, 0, -30), End: end, Seed: 3}
	if _, _, err := writeCSVFile(ctx, csvPath, cfg); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "cube", "scripts", "load-events.js"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	db := eventsdb.Path(dir, 8)
	loader := nodeLoader{node: "node", script: script, stdout: &logs, stderr: &logs}
	if err := loader.Load(ctx, []loadJob{{dbPath: db, file: projectFile{id: 8, path: csvPath}}}); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if got := queryNumber(t, db, `SELECT count(*) AS n FROM gitlab_project_8.snowplow_events`); got != 2000 {
		t.Errorf("%v events loaded, want 2000", got)
	}
	back := `SELECT count(*) AS n FROM (SELECT (derived_tstamp, event_id) < lag((derived_tstamp, event_id)) OVER (ORDER BY rowid) AS back FROM gitlab_project_8.snowplow_events) WHERE back`
	if got := queryNumber(t, db, back); got != 0 {
		t.Errorf("%v events stored before an earlier one", got)
	}
	if _, err := os.Stat(db + ".staging"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the staging file is left beside the database: %v", err)
	}
}

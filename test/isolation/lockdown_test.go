package isolation

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"productanalytics/internal/eventsdb"
)

// locked runs testdata/locked.js: a tenant's database opened exactly as Cube
// opens it (cube/tenantdb.js), the SQL run straight on its connection.
func locked(t *testing.T, out any, stdin any, args ...string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "locked.js"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", append([]string{script}, args...)...)
	// Relative paths (DuckDB's own '.tmp', ':memory:.wal') resolve into the
	// attack folder, which must stay empty.
	cmd.Dir = outDir
	if stdin != nil {
		b, err := json.Marshal(stdin)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = bytes.NewReader(b)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("locked.js %v: %v\n%s", args, err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("locked.js %v: %v\n%s", args, err, b)
	}
}

// result is one statement's outcome.
type result struct {
	Rows  []map[string]any `json:"rows"`
	Error *string          `json:"error"`
}

// TestLockdownSettings checks each setting on a tenant's instance, for a
// project's file and for a project without one.
func TestLockdownSettings(t *testing.T) {
	common := map[string]string{
		"enable_external_access":       "false",
		"autoload_known_extensions":    "false",
		"autoinstall_known_extensions": "false",
		"allow_community_extensions":   "false",
		"allow_unsigned_extensions":    "false",
		"lock_configuration":           "true",
		"allowed_directories":          "[]",
		"allowed_configs":              "[]",
		"temp_directory":               "",
		// One of many instances in Cube's process: one thread each, and
		// tenantdb.js's default memory limit (256MB), not DuckDB's 80 %
		// of the machine.
		"threads":      "1",
		"memory_limit": "244.1 MiB",
	}
	for _, tt := range []struct {
		appID  string
		access string
		paths  string // the only allowed_paths: DuckDB's own for the open file
	}{
		{"gitlab_project_1", "read_only", eventsdb.Path(dataDir, 1)},
		{"gitlab_project_3", "automatic", ""},
	} {
		t.Run(tt.appID, func(t *testing.T) {
			var got map[string]string
			locked(t, &got, nil, "settings", dataDir, tt.appID)
			for name, want := range common {
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
			}
			if got["access_mode"] != tt.access {
				t.Errorf("access_mode = %q, want %q", got["access_mode"], tt.access)
			}
			paths := strings.Split(strings.Trim(got["allowed_paths"], "[]"), ", ")
			for _, p := range paths {
				if tt.paths == "" && p != "" || tt.paths != "" && !strings.HasPrefix(p, tt.paths) {
					t.Errorf("allowed_paths holds %q", p)
				}
			}
		})
	}
}

// TestLockdownStatements runs the attacks straight on a tenant's connection,
// without the driver's statement gate: the settings alone stop each, and
// none of them changes what the connection may do afterwards.
func TestLockdownStatements(t *testing.T) {
	out := func(name string) string { return sqlString(filepath.Join(outDir, name)) }
	const (
		disabled = "file system operations are disabled by configuration"
		lockedCf = "the configuration has been locked"
	)
	p2 := sqlString(eventsdb.Path(dataDir, 2))
	attacks := []struct{ sql, want string }{
		{"SELECT count(*) AS n FROM gitlab_project_2.snowplow_events", `schema "gitlab_project_2" does not exist`},
		{"SELECT count(*) AS n FROM project_2.gitlab_project_2.snowplow_events", `Catalog "project_2" does not exist`},
		{"ATTACH " + p2 + " AS p2 (READ_ONLY)", disabled},
		{"SELECT count(*) AS n FROM read_duckdb(" + p2 + ")", disabled},
		{"SELECT count(*) AS n FROM " + p2, disabled},
		{"SELECT content FROM read_text(" + sqlString(secret) + ")", disabled},
		{"SELECT * FROM read_csv(" + sqlString(secret) + ")", disabled},
		{"SELECT content FROM read_blob(" + sqlString(secret) + ")", disabled},
		{"SELECT * FROM glob(" + sqlString(filepath.Join(outDir, "*")) + ")", disabled},
		{"SELECT * FROM " + sqlString(secret), disabled},
		{"COPY (SELECT 1) TO " + out("x.csv"), disabled},
		{"COPY gitlab_project_1.snowplow_events TO " + out("x.parquet") + " (FORMAT parquet)", disabled},
		{"EXPORT DATABASE " + out("export"), disabled},
		{"INSTALL httpfs", disabled},
		{"INSTALL h3 FROM community", disabled},
		{"LOAD httpfs", "Loading external extensions is disabled"},
		{"LOAD " + out("evil.duckdb_extension"), "Loading external extensions is disabled"},
		{"CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", disabled},
		{"SET enable_external_access = true", lockedCf},
		{"SET GLOBAL enable_external_access = true", lockedCf},
		{"RESET enable_external_access", lockedCf},
		{"SET lock_configuration = false", lockedCf},
		{"RESET lock_configuration", lockedCf},
		{"SET allowed_directories = ['/']", lockedCf},
		{"SET allowed_paths = [" + sqlString(secret) + "]", lockedCf},
		{"SET allowed_configs = ['enable_external_access']", lockedCf},
		{"SET autoload_known_extensions = true", lockedCf},
		{"SET autoinstall_known_extensions = true", lockedCf},
		{"SET allow_community_extensions = true", lockedCf},
		{"SET allow_unsigned_extensions = true", lockedCf},
		{"SET temp_directory = " + out("tmp"), lockedCf},
		{"SET log_query_path = " + out("queries.log"), lockedCf},
		{"SET access_mode = 'READ_WRITE'", lockedCf},
		{"PRAGMA threads = 1", lockedCf},
		{"CREATE TABLE gitlab_project_1.planted AS SELECT 1 AS x", "read-only"},
		// After every attempt above: still nothing.
		{"SELECT content FROM read_text(" + sqlString(secret) + ")", disabled},
		{"ATTACH " + p2 + " AS p2 (READ_ONLY)", disabled},
	}
	sqls := []string{"SELECT count(*) AS n FROM gitlab_project_1.snowplow_events"}
	for _, a := range attacks {
		sqls = append(sqls, a.sql)
	}
	sqls = append(sqls, "SELECT current_setting('enable_external_access') AS e, current_setting('lock_configuration') AS l")

	var got []result
	locked(t, &got, sqls, "run", dataDir, "gitlab_project_1")
	if len(got) != len(sqls) {
		t.Fatalf("%d results for %d statements", len(got), len(sqls))
	}
	if got[0].Error != nil || len(got[0].Rows) != 1 || jsonText(got[0].Rows[0]["n"]) != eventCount(t, 1) {
		t.Fatalf("the control query on project 1's own events: %+v", got[0])
	}
	for i, a := range attacks {
		r := got[i+1]
		switch {
		case r.Error == nil:
			t.Errorf("%s: ran, returning %v", a.sql, r.Rows)
		case !strings.Contains(*r.Error, a.want):
			t.Errorf("%s: error %q, want one with %q", a.sql, *r.Error, a.want)
		case strings.Contains(*r.Error, secretText):
			t.Errorf("%s: the secret is in the error", a.sql)
		}
	}
	last := got[len(got)-1]
	if last.Error != nil || jsonText(last.Rows[0]["e"]) != "false" || jsonText(last.Rows[0]["l"]) != "true" {
		t.Errorf("the settings after the attacks: %+v", last)
	}
	checkNothingWritten(t)
}

// TestLockdownWithoutFile: a project without a file cannot reach another's
// file or the file system either. Its database is in memory and writable
// (DuckDB has no read-only in-memory database): the statement gate is what
// keeps a schema from being planted there, as the last statement shows.
func TestLockdownWithoutFile(t *testing.T) {
	sqls := []string{
		"ATTACH " + sqlString(eventsdb.Path(dataDir, 1)) + " AS p1 (READ_ONLY)",
		"SELECT count(*) FROM " + sqlString(eventsdb.Path(dataDir, 1)),
		"SELECT content FROM read_text(" + sqlString(secret) + ")",
		"COPY (SELECT 1) TO " + sqlString(filepath.Join(outDir, "x.csv")),
		"COPY (SELECT 1) TO '.tmp/x.csv'",
		"COPY (SELECT 1) TO ':memory:.wal'",
		"SET enable_external_access = true",
		"CREATE SCHEMA gitlab_project_3",
	}
	var got []result
	locked(t, &got, sqls, "run", dataDir, "gitlab_project_3")
	if len(got) != len(sqls) {
		t.Fatalf("%d results for %d statements", len(got), len(sqls))
	}
	for i, r := range got[:len(got)-1] {
		if r.Error == nil {
			t.Errorf("%s: ran, returning %v", sqls[i], r.Rows)
		}
	}
	if got[len(got)-1].Error != nil {
		t.Errorf("the in-memory database is read-only after all: %s", *got[len(got)-1].Error)
	}
	checkNothingWritten(t)
}

// TestStatementGate checks the driver's gate: the SQL Cube writes passes, and
// everything else that could change the instance or read a file is refused,
// however it is spelled.
func TestStatementGate(t *testing.T) {
	tests := []struct {
		sql, refusal string // "" when it must pass
	}{
		{`SELECT date_trunc('day', ("tracked_events".derived_tstamp::timestamptz AT TIME ZONE 'UTC')) "d", count("tracked_events".event_id) "c"
		  FROM gitlab_project_1.snowplow_events AS "tracked_events"
		  WHERE ("tracked_events".derived_tstamp >= $1::timestamptz AND "tracked_events".derived_tstamp <= $2::timestamptz)
		  GROUP BY 1 ORDER BY 1 ASC LIMIT 10000`, ""},
		{"SELECT 1", ""},
		{"WITH s AS (SELECT 1 AS x) SELECT x FROM s UNION ALL SELECT 2", ""},
		{"SELECT d FROM generate_series(TIMESTAMP '2025-01-01', TIMESTAMP '2025-01-07', INTERVAL 1 DAY) t(d)", ""},
		{"SELECT * FROM range(3)", ""},
		{"SELECT 1; SELECT 2", "only one statement is run, got 2"},
		{"COPY (SELECT 1) TO 'x.csv'", "only SELECT statements are run"},
		{"SELECT 1; COPY (SELECT 1) TO 'x.csv'", "only SELECT statements are run"},
		{"PRAGMA version", "only SELECT statements are run"},
		{"PRAGMA enable_profiling", "only SELECT statements are run"},
		{"SET threads = 1", "only SELECT statements are run"},
		{"CALL enable_logging()", "only SELECT statements are run"},
		{"ATTACH 'x.duckdb'", "only SELECT statements are run"},
		{"LOAD httpfs", "only SELECT statements are run"},
		{"CREATE TABLE t AS SELECT 1", "only SELECT statements are run"},
		{"EXPLAIN SELECT 1", "only SELECT statements are run"},
		{"SELEC 1", "syntax error"},
		{"SELECT * FROM read_text('x')", "table function read_text is not allowed"},
		{"SELECT * FROM READ_TEXT('x')", "table function read_text is not allowed"},
		{`SELECT * FROM "read_text"('x')`, "table function read_text is not allowed"},
		{"SELECT * FROM system.main.read_text('x')", "table function read_text is not allowed"},
		{"SELECT * FROM read_text /* hidden */ ('x')", "table function read_text is not allowed"},
		{"SELECT (SELECT count(*) FROM (SELECT * FROM read_blob('x')) s)", "table function read_blob is not allowed"},
		{"WITH s AS (SELECT * FROM glob('/*')) SELECT * FROM s", "table function glob is not allowed"},
		{"SELECT 1 WHERE 1 IN (SELECT 1 FROM query('SELECT 1'))", "table function query is not allowed"},
		{"SELECT * FROM range(1) r, LATERAL (SELECT * FROM enable_logging(storage = 'file', storage_path = '/tmp')) l", "table function enable_logging is not allowed"},
		{"SELECT * FROM json_execute_serialized_sql('{}')", "table function json_execute_serialized_sql is not allowed"},
		{"SELECT * FROM query_table('gitlab_project_2.snowplow_events')", "table function query_table is not allowed"},
		{"SELECT * FROM read_duckdb('x.duckdb')", "table function read_duckdb is not allowed"},
	}
	sqls := make([]string, len(tests))
	for i, tt := range tests {
		sqls[i] = tt.sql
	}
	var got []struct {
		Refusal *string `json:"refusal"`
	}
	locked(t, &got, sqls, "gate")
	for i, tt := range tests {
		switch r := got[i].Refusal; {
		case tt.refusal == "" && r != nil:
			t.Errorf("%s: refused (%s)", tt.sql, *r)
		case tt.refusal != "" && r == nil:
			t.Errorf("%s: passed", tt.sql)
		case tt.refusal != "" && !strings.Contains(*r, tt.refusal):
			t.Errorf("%s: refused with %q, want %q", tt.sql, *r, tt.refusal)
		}
	}
}

// jsonText renders a JSON number or string as text.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

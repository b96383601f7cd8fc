package isolation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
)

// answer is Cube's answer to a load.
type answer struct {
	status int
	body   string
	data   []map[string]any
	err    string // Cube's "error"
}

func (a answer) String() string { return fmt.Sprintf("%d %.600s", a.status, a.body) }

// load sends query to Cube's load endpoint with a Cube token for project, as
// the API mints them, and asks again while Cube answers "Continue wait".
func load(t *testing.T, project int64, query map[string]any) answer {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		// Minted for each send: the token lives three minutes.
		token, err := cube.MintToken(stack.LocalCubeKey, project, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", env.CubeURL+"/cubejs-api/v1/load", bytes.NewReader(body))
		req.Header.Set("Authorization", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a := answer{status: resp.StatusCode, body: string(b)}
		var parsed struct {
			Data  []map[string]any `json:"data"`
			Error any              `json:"error"`
		}
		if err := json.Unmarshal(b, &parsed); err != nil {
			t.Fatalf("Cube's answer is not JSON: %s", a)
		}
		a.data = parsed.Data
		if parsed.Error != nil {
			a.err = fmt.Sprint(parsed.Error)
		}
		if a.err != "Continue wait" {
			return a
		}
	}
}

// Timezones that close Cube's AT TIME ZONE '...' and add SQL of their own
// (Cube 0.33 pastes the timezone into SQL unescaped). inline puts a scalar
// subquery where Cube expects TrackedEvents.count; stacked ends Cube's
// statement (on a table of its own, so that it runs for a project without
// data too) and runs statements of its own before a last SELECT.
const (
	inlineTZ  = `UTC')) "tracked_events__utc_time_day", (%s) "tracked_events__count" --`
	stackedTZ = `UTC')) "tracked_events__utc_time_day" FROM (SELECT TIMESTAMP '2025-01-01' AS derived_tstamp) AS "tracked_events"; %s; SELECT 1 --`
)

func injected(timezone string) map[string]any {
	return map[string]any{
		"measures":       []string{"TrackedEvents.count"},
		"timeDimensions": []map[string]any{{"dimension": "TrackedEvents.utcTime", "granularity": "day"}},
		"limit":          1,
		"timezone":       timezone,
	}
}

// inline runs expr as a scalar subquery on project's connection and returns
// Cube's answer; the value, if any, is in value.
func inline(t *testing.T, project int64, expr string) (a answer, value string) {
	t.Helper()
	a = load(t, project, injected(fmt.Sprintf(inlineTZ, expr)))
	if a.status == 200 && len(a.data) == 1 {
		value = fmt.Sprint(a.data[0]["TrackedEvents.count"])
	}
	return a, value
}

// TestInjectionReachesSQL is the positive control: with the guard off, what
// the timezone carries is executed by DuckDB, so the refusals below are the
// store's doing and not a broken payload's.
func TestInjectionReachesSQL(t *testing.T) {
	if !strings.Contains(cubeLog.String(), "cube query guard OFF") {
		t.Fatalf("Cube does not run without its query guard:\n%s", logcheck.LastLines(cubeLog.String(), 10))
	}
	for expr, want := range map[string]string{
		"SELECT 6*7*1000+1": "42001",
		"SELECT 'inj' || 'ected-' || CAST(6*7 AS VARCHAR)": "injected-42",
		// Project 1's own events, read through the injection.
		"SELECT count(*) FROM gitlab_project_1.snowplow_events": eventCount(t, 1),
		// The lockdown, as Cube's own connection has it.
		"SELECT current_setting('enable_external_access')::VARCHAR || '/' || current_setting('lock_configuration')::VARCHAR || '/' || current_setting('access_mode')": "false/true/read_only",
		// Its share of the process: one thread, a memory limit of its own.
		"SELECT current_setting('threads')::VARCHAR || '/' || current_setting('memory_limit')": "1/244.1 MiB",
	} {
		if a, got := inline(t, 1, expr); got != want {
			t.Errorf("%s: got %q, want %q (%s)", expr, got, want, a)
		}
	}
	// Stacked statements reach the driver whole: these three SELECTs parse,
	// and only the driver's gate stops them.
	a := load(t, 1, injected(fmt.Sprintf(stackedTZ, "SELECT 42")))
	if !strings.Contains(a.err, "only one statement is run, got 3") {
		t.Errorf("stacked SELECTs: %s", a)
	}
}

// TestOtherProjectIsUnreachable: project 1's connection has no way to
// project 2's events, by name, by catalog, by file or by ATTACH.
func TestOtherProjectIsUnreachable(t *testing.T) {
	p2 := eventCount(t, 2)
	if p2 != fmt.Sprint(project2Events) {
		t.Fatalf("project 2's file holds %s events, want %d", p2, project2Events)
	}
	// Project 2's own token reads them: the data is there to be stolen.
	if a, got := inline(t, 2, "SELECT count(*) FROM gitlab_project_2.snowplow_events"); got != p2 {
		t.Fatalf("project 2's own count: %q (%s)", got, a)
	}
	file := eventsdb.Path(dataDir, 2)
	tests := []struct {
		name, expr, want string
	}{
		{"by schema", "SELECT count(*) FROM gitlab_project_2.snowplow_events", `schema "gitlab_project_2" does not exist`},
		{"by catalog", "SELECT count(*) FROM project_2.gitlab_project_2.snowplow_events", `Catalog "project_2" does not exist`},
		{"by file path", "SELECT count(*) FROM " + sqlString(file), "file system operations are disabled by configuration"},
		{"read_duckdb", "SELECT count(*) FROM read_duckdb(" + sqlString(file) + ")", "table function read_duckdb is not allowed"},
		{"query()", "SELECT * FROM query('SELECT count(*) FROM gitlab_project_2.snowplow_events')", "table function query is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, got := inline(t, 1, tt.expr)
			if a.status == 200 || !strings.Contains(a.err, tt.want) {
				t.Errorf("want an error with %q, got %s", tt.want, a)
			}
			if got != "" {
				t.Errorf("the attack answered %q: %s", got, a)
			}
			if strings.Contains(a.body, p2) {
				t.Errorf("project 2's count %s came back: %s", p2, a)
			}
		})
	}
	a := load(t, 1, injected(fmt.Sprintf(stackedTZ, "ATTACH "+sqlString(file)+" AS p2 (READ_ONLY); SELECT count(*) FROM p2.gitlab_project_2.snowplow_events")))
	if !strings.Contains(a.err, "only SELECT statements are run") || strings.Contains(a.body, p2) {
		t.Errorf("ATTACH of project 2's file: %s", a)
	}
	checkNothingWritten(t)
}

// TestNoFileSystemAccess: neither a read nor a write of any file, inline or
// stacked, and the settings that forbid them cannot be changed.
func TestNoFileSystemAccess(t *testing.T) {
	out := func(name string) string { return sqlString(outDir + "/" + name) }
	inlineTests := []struct {
		name, expr, want string
	}{
		{"scan of a file path", "SELECT count(*) FROM " + sqlString(secret), "file system operations are disabled by configuration"},
		{"read_text", "SELECT content FROM read_text(" + sqlString(secret) + ")", "table function read_text is not allowed"},
		{"read_csv", "SELECT count(*) FROM read_csv(" + sqlString(secret) + ")", "table function read_csv is not allowed"},
		{"read_blob", "SELECT count(*) FROM READ_BLOB(" + sqlString(secret) + ")", "table function read_blob is not allowed"},
		{"glob", "SELECT count(*) FROM glob(" + sqlString(outDir+"/*") + ")", "table function glob is not allowed"},
		{"COPY inline", "SELECT count(*) FROM query('COPY (SELECT 1) TO " + strings.ReplaceAll(out("inline.csv"), "'", "''") + "')", "table function query is not allowed"},
		{"logging to a file", "SELECT count(*) FROM enable_logging(storage = 'file', storage_path = " + out("logs") + ")", "table function enable_logging is not allowed"},
	}
	for _, tt := range inlineTests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the driver remembers statements it passed, never
			// ones it refused.
			for range 2 {
				a, got := inline(t, 1, tt.expr)
				if a.status == 200 || !strings.Contains(a.err, tt.want) {
					t.Errorf("want an error with %q, got %s", tt.want, a)
				}
				if got != "" {
					t.Errorf("the attack answered %q: %s", got, a)
				}
				if strings.Contains(a.body, secretText) {
					t.Errorf("the secret came back: %s", a)
				}
			}
		})
	}
	stacked := map[string]string{
		"COPY":                       "COPY (SELECT 1) TO " + out("stacked.csv"),
		"COPY to the tenant's WAL":   "COPY (SELECT 1) TO " + sqlString(eventsdb.Path(dataDir, 1)+".wal"),
		"EXPORT DATABASE":            "EXPORT DATABASE " + out("export"),
		"INSTALL":                    "INSTALL httpfs",
		"LOAD":                       "LOAD httpfs",
		"SET external access":        "SET enable_external_access = true",
		"RESET external access":      "RESET enable_external_access",
		"unlock":                     "SET lock_configuration = false",
		"allow a directory":          "SET allowed_directories = ['/']",
		"PRAGMA":                     "PRAGMA enable_profiling",
		"CALL":                       "CALL enable_logging(storage = 'file', storage_path = " + out("logs") + ")",
		"SET then read":              "SET enable_external_access = true; SELECT * FROM read_text(" + sqlString(secret) + ")",
		"persistent secret":          "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
		"write into the own catalog": "CREATE TABLE gitlab_project_1.planted AS SELECT 1 AS x",
	}
	for name, stmts := range stacked {
		t.Run("stacked "+name, func(t *testing.T) {
			a := load(t, 1, injected(fmt.Sprintf(stackedTZ, stmts)))
			if !strings.Contains(a.err, "only SELECT statements are run") {
				t.Errorf("want the driver's refusal, got %s", a)
			}
			if strings.Contains(a.body, secretText) {
				t.Errorf("the secret came back: %s", a)
			}
		})
	}
	// The tenant still answers correctly after all of it.
	if a, got := inline(t, 1, "SELECT count(*) FROM gitlab_project_1.snowplow_events"); got != eventCount(t, 1) {
		t.Errorf("project 1 after the attacks: %q (%s)", got, a)
	}
	checkNothingWritten(t)
}

// TestProjectWithoutFile: a project with no file gets an empty database:
// its queries fail as "no such schema" (which the API answers 404), nothing
// is created on disk, and SQL cannot plant a schema for later queries to
// find. (Its lockdown is checked on the connection itself, in
// TestLockdownWithoutFile: here every injected expression fails with the
// missing schema before anything else.)
func TestProjectWithoutFile(t *testing.T) {
	q := map[string]any{"measures": []string{"TrackedEvents.count"}}
	if a := load(t, 3, q); !strings.Contains(a.err, `schema "gitlab_project_3" does not exist`) {
		t.Fatalf("project 3: %s", a)
	}
	plant := "CREATE SCHEMA gitlab_project_3; CREATE TABLE gitlab_project_3.snowplow_events AS SELECT 1 AS event_id"
	if a := load(t, 3, injected(fmt.Sprintf(stackedTZ, plant))); !strings.Contains(a.err, "only SELECT statements are run") {
		t.Errorf("planting a schema: %s", a)
	}
	if a := load(t, 3, q); !strings.Contains(a.err, `schema "gitlab_project_3" does not exist`) {
		t.Errorf("project 3 after the attempt: %s", a)
	}
	checkNothingWritten(t)
}

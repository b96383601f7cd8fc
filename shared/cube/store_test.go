package cube

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDoStoreFailures: Cube's answers to a failure of the events store, in
// the words the stores and their Node clients use, are ErrStore whatever
// Cube's status, with a reason in fixed words; the caller's own mistakes,
// even when they quote those words, stay ErrQuery.
func TestDoStoreFailures(t *testing.T) {
	const queryID = "; query id: 9e752ddd-5c1a-4c62-a8f4-0c9f1d2b7a11"
	for _, tc := range []struct {
		name   string
		status int
		error  string
		want   error
		reason string
	}{
		// DuckDB, as Cube answers it (issue: a 10M-event project's sessions).
		{"DuckDB out of memory", 400, "Error: Out of Memory Error: could not allocate block of size 256.0 KiB (244.0 MiB/244.1 MiB used)", ErrStore, outOfMemory},
		{"DuckDB out of memory without the prefix", 400, "Out of Memory Error: failed to allocate data of size 4.0 MiB (243.9 MiB/244.1 MiB used)", ErrStore, outOfMemory},
		{"DuckDB interrupted", 400, "INTERRUPT Error: Interrupted!", ErrStore, interrupted},
		{"DuckDB connection closed", 500, "Error: Connection Error: Connection already closed!", ErrStore, dropped},
		// ClickHouse, as the server words it, and as its Node client
		// does once it has parsed the code away.
		{"ClickHouse memory limit", 400, "Error: Query failed: Error: Code: 241. DB::Exception: Memory limit (for query) exceeded: would use 9.32 GiB (attempt to allocate chunk of 4194304 bytes), maximum: 9.31 GiB.: While executing AggregatingTransform. (MEMORY_LIMIT_EXCEEDED) (version 24.8.4.13 (official build))" + queryID, ErrStore, outOfMemory},
		{"ClickHouse memory limit, parsed", 400, "Error: Query failed: Error: Memory limit (for query) exceeded: would use 9.32 GiB (attempt to allocate chunk of 4194304 bytes), maximum: 9.31 GiB.: While executing AggregatingTransform. " + queryID, ErrStore, outOfMemory},
		{"ClickHouse total memory limit, parsed", 400, "Error: Query failed: Error: Memory limit (total) exceeded: would use 3.52 GiB (attempt to allocate chunk of 4360384 bytes), maximum: 3.47 GiB" + queryID, ErrStore, outOfMemory},
		{"ClickHouse 18 memory limit", 400, "Error: Query failed: Error: Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded: would use 9.31 GiB, e.what() = DB::Exception\n" + queryID, ErrStore, outOfMemory},
		{"ClickHouse timeout", 400, "Error: Query failed: Error: Code: 159. DB::Exception: Timeout exceeded: elapsed 30.000437 seconds, maximum: 30. (TIMEOUT_EXCEEDED) (version 24.8.4.13 (official build))" + queryID, ErrStore, timedOut},
		{"ClickHouse timeout, parsed", 400, "Error: Query failed: Error: Timeout exceeded: elapsed 30.000437 seconds, maximum: 30. " + queryID, ErrStore, timedOut},
		{"ClickHouse too slow", 400, "Error: Code: 160. DB::Exception: Estimated query execution time (312.5 seconds) is too long. Maximum: 30. (TOO_SLOW)", ErrStore, timedOut},
		{"ClickHouse too many queries", 400, "Error: Code: 202. DB::Exception: Too many simultaneous queries. Maximum: 100. (TOO_MANY_SIMULTANEOUS_QUERIES)", ErrStore, storeBusy},
		{"ClickHouse query cancelled", 400, "Error: Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED)", ErrStore, interrupted},
		{"ClickHouse client timeout", 400, "Error: Query failed: Error: Timeout error." + queryID, ErrStore, timedOut},
		{"Cube's queue timing out", 400, "Query execution timeout after 10 min of waiting", ErrStore, timedOut},
		// Node's sockets, between Cube and the store.
		{"connection refused", 400, "Error: Query failed: Error: connect ECONNREFUSED 10.0.3.7:8123" + queryID, ErrStore, refused},
		{"connection reset", 400, "Error: Query failed: Error: read ECONNRESET" + queryID, ErrStore, dropped},
		{"socket hang up", 500, "Error: socket hang up", ErrStore, dropped},
		{"connection terminated", 400, "Connection terminated unexpectedly", ErrStore, dropped},
		{"host unknown", 400, "Error: Query failed: Error: getaddrinfo ENOTFOUND clickhouse.internal" + queryID, ErrStore, refused},
		// The caller's own mistakes, even when they quote a store's words.
		{"unknown member", 400, "'nope' not found for path 'TrackedEvents.nope'", ErrQuery, ""},
		{"a filter value quoting DuckDB", 400, "Conversion Error: Could not convert string 'Out of Memory Error: x' to INT64", ErrQuery, ""},
		{"a filter value quoting ClickHouse", 400, "Error: Code: 6. DB::Exception: Cannot parse string 'Code: 241. Memory limit (for query) exceeded' as Int64. (CANNOT_PARSE_TEXT)", ErrQuery, ""},
		{"a filter value quoting a socket", 400, "Error: Code: 6. DB::Exception: Cannot parse string 'ECONNRESET' as Int64. (CANNOT_PARSE_TEXT)", ErrQuery, ""},
		{"ClickHouse syntax", 400, "Error: Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR)", ErrQuery, ""},
		{"a failure inside Cube", 500, "Error: Query limit exceeded", ErrFailed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"error": tc.error, "stack": "Error\n    at /cube/node_modules/x.js:1:1"})
			wantMessage := tc.reason
			if tc.want != ErrStore {
				wantMessage = tc.error
			}
			runDo(t, doCase{name: tc.name, script: []reply{{status: tc.status, body: string(body)}},
				wantKind: tc.want, wantMessage: wantMessage, wantCalls: 1, notInError: []string{"node_modules"}})
		})
	}
}

// TestStoreFailureKeepsCubesTextForTheLog: the caller gets fixed words;
// Cube's text, bounded, stays in the error for the log line.
func TestStoreFailureKeepsCubesTextForTheLog(t *testing.T) {
	long := "Error: Out of Memory Error: could not allocate block of size 256.0 KiB" + strings.Repeat(" é", 1000)
	e := failure(400, []byte(`{"error":`+strconv.Quote(long)+`}`))
	if e.Kind != ErrStore || e.Message != outOfMemory {
		t.Fatalf("got %v %q", e.Kind, e.Message)
	}
	if e.Err == nil || !strings.HasPrefix(e.Err.Error(), "Error: Out of Memory Error:") {
		t.Fatalf("the cause %v lost Cube's text", e.Err)
	}
	if n := len(e.Err.Error()); n > maxMessage+3 || !strings.HasSuffix(e.Err.Error(), "...") {
		t.Fatalf("the cause is %d bytes; want at most %d, cut", n, maxMessage+3)
	}
	if !json.Valid([]byte(strconv.Quote(e.Err.Error()))) || strings.ContainsRune(e.Err.Error(), '\uFFFD') {
		t.Fatalf("cut inside a character: %q", e.Err.Error()[len(e.Err.Error())-8:])
	}
}

// TestDoBusy: Cube's 429 is ErrBusy at once, with its Retry-After bounded,
// never re-sent, whether or not the call was polling.
func TestDoBusy(t *testing.T) {
	busy := func(retry string) reply {
		return reply{status: http.StatusTooManyRequests, body: `{"error":"too many queries of this project in progress"}`, retryAfter: retry}
	}
	cw := reply{status: 200, body: continueWait}
	for _, tc := range []struct {
		name   string
		script []reply
		want   time.Duration
		calls  int
		polls  int
	}{
		{"seconds", []reply{busy("3")}, 3 * time.Second, 1, 0},
		{"none", []reply{busy("")}, MinRetryAfter, 1, 0},
		{"zero", []reply{busy("0")}, MinRetryAfter, 1, 0},
		{"negative", []reply{busy("-5")}, MinRetryAfter, 1, 0},
		{"garbage", []reply{busy("soon\r\nX-Injected: 1")}, MinRetryAfter, 1, 0},
		{"a fraction", []reply{busy("1.5")}, MinRetryAfter, 1, 0},
		{"huge", []reply{busy("99999999999999999999")}, MinRetryAfter, 1, 0},
		{"past the bound", []reply{busy("86400")}, MaxRetryAfter, 1, 0},
		{"while polling", []reply{cw, busy("2")}, 2 * time.Second, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDo(t, doCase{name: "busy " + tc.name, script: tc.script, wantKind: ErrBusy,
				wantMessage: "too many queries of this project in progress", wantCalls: tc.calls, wantPolls: tc.polls, within: promptly,
				check: func(t *testing.T, e *Error) {
					if e.RetryAfter != tc.want {
						t.Errorf("RetryAfter %v, want %v", e.RetryAfter, tc.want)
					}
				}})
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"5", 5 * time.Second},
		{" 7 ", 7 * time.Second},
		{"60", time.Minute},
		{"61", time.Minute},
		{"", time.Second},
		{"0", time.Second},
		{"abc", time.Second},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{now.Add(24 * time.Hour).Format(http.TimeFormat), time.Minute},
	} {
		t.Run(tc.header, func(t *testing.T) {
			if got := retryAfter(tc.header, now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

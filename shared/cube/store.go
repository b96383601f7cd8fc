package cube

import (
	"strconv"
	"strings"
)

// storeFailure returns what went wrong, in a few fixed words fit for the
// caller, when msg (Cube's error text) tells of a failure of the events
// store rather than of the query: out of memory, a timeout or an
// interruption, a dropped or refused connection. It returns "" otherwise.
//
// Only the opening of the text, after the prefixes Cube and its drivers
// add, is read: the caller's own words (a filter's value, say) appear
// further on in a store's messages, and must not turn a mistake of theirs
// into a failure of ours.
func storeFailure(msg string) string {
	msg = strings.TrimSpace(msg)
	for {
		rest, ok := cutAnyPrefix(msg, "Error: ", "Query failed: ", "Stream query failed: ")
		if !ok {
			break
		}
		msg = strings.TrimSpace(rest)
	}
	if code, ok := clickHouseCode(msg); ok {
		return clickHouseFailures[code]
	}
	for _, f := range storeFailures {
		if strings.HasPrefix(msg, f.opening) {
			return f.reason
		}
	}
	return ""
}

func cutAnyPrefix(s string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest, true
		}
	}
	return s, false
}

// The reasons a store failure is given to the caller with.
const (
	outOfMemory = "it ran out of memory for this query; a shorter date range or fewer dimensions need less"
	timedOut    = "the query took longer than the store allows; a shorter date range needs less time"
	interrupted = "the query was interrupted"
	dropped     = "the connection to the store was lost"
	refused     = "the store refused the connection or could not be reached"
	storeBusy   = "it is running too many queries at once"
)

// storeFailures are the openings of store failures' texts: DuckDB's,
// ClickHouse's as its Node client words them once it has parsed the code
// away, and Node's own for a connection.
var storeFailures = []struct{ opening, reason string }{
	// DuckDB: "Out of Memory Error: could not allocate block of size
	// 256.0 KiB (244.0 MiB/244.1 MiB used)".
	{"Out of Memory Error:", outOfMemory},
	{"INTERRUPT Error:", interrupted},
	{"Connection Error: Connection already closed", dropped},
	// ClickHouse, through @clickhouse/client: "Memory limit (for query)
	// exceeded: would use 9.32 GiB ...", "Timeout exceeded: elapsed 5.0
	// seconds, maximum: 5", and the client's own "Timeout error.".
	{"Memory limit (", outOfMemory},
	{"Timeout exceeded:", timedOut},
	{"Timeout error.", timedOut},
	{"Query was cancelled", interrupted},
	{"Too many simultaneous queries", storeBusy},
	// Cube's queue, waiting on the store past its execution timeout.
	{"Query execution timeout after", timedOut},
	// Node's sockets.
	{"socket hang up", dropped},
	{"read ECONNRESET", dropped},
	{"ECONNRESET", dropped},
	{"write EPIPE", dropped},
	{"connect ECONNREFUSED", refused},
	{"connect ETIMEDOUT", refused},
	{"getaddrinfo ", refused},
	{"Connection terminated", dropped},
	{"Connection closed", dropped},
}

// clickHouseFailures are the ClickHouse error codes of store failures.
var clickHouseFailures = map[int]string{
	159: timedOut,    // TIMEOUT_EXCEEDED
	160: timedOut,    // TOO_SLOW
	173: outOfMemory, // CANNOT_ALLOCATE_MEMORY
	202: storeBusy,   // TOO_MANY_SIMULTANEOUS_QUERIES
	209: dropped,     // SOCKET_TIMEOUT
	210: dropped,     // NETWORK_ERROR
	241: outOfMemory, // MEMORY_LIMIT_EXCEEDED
	394: interrupted, // QUERY_WAS_CANCELLED
}

// clickHouseCode reads the code of a text that opens as ClickHouse's
// server words an error: "Code: 241. DB::Exception: ..." (before 19.x,
// "Code: 241, e.displayText() = ...").
func clickHouseCode(msg string) (int, bool) {
	rest, ok := strings.CutPrefix(msg, "Code: ")
	if !ok {
		return 0, false
	}
	end := strings.IndexAny(rest, ".,")
	if end <= 0 || end > 4 {
		return 0, false
	}
	code, err := strconv.Atoi(rest[:end])
	return code, err == nil
}

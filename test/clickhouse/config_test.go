package clickhouse

import (
	"context"
	"strings"
	"testing"

	"productanalytics/internal/stack"
)

// TestCubeRefusesAnIncompleteStore: Cube in ClickHouse mode refuses to
// start without the server or a long enough password key, and its query
// guard cannot be turned off there.
func TestCubeRefusesAnIncompleteStore(t *testing.T) {
	key := "CUBE_TENANT_DB_PASSWORD_KEY=" + passwordKey
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"unknown store", []string{"CUBE_DB_TYPE=mysql"}, "CUBE_DB_TYPE must be duckdb or clickhouse, got 'mysql'"},
		{"no host", []string{"CUBE_DB_TYPE=clickhouse", key}, "the ClickHouse host is not set (CUBEJS_DB_HOST)"},
		{"short key", []string{"CUBE_DB_TYPE=clickhouse", "CUBEJS_DB_HOST=127.0.0.1", "CUBE_TENANT_DB_PASSWORD_KEY=short"}, "at least 32 characters"},
		{"no key", []string{"CUBE_DB_TYPE=clickhouse", "CUBEJS_DB_HOST=127.0.0.1"}, "at least 32 characters"},
		{"guard off", []string{"CUBE_DB_TYPE=clickhouse", "CUBEJS_DB_HOST=127.0.0.1", key, "CUBE_QUERY_GUARD=off", "CUBE_TEST_MODEL=1"}, "CUBE_TEST_MODEL=1 needs CUBE_DB_TYPE=duckdb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := stack.CubeRefusal(context.Background(), root, tc.env...)
			if err != nil || !strings.Contains(out, tc.want) {
				t.Fatalf("got %v:\n%s\nwant a refusal with %q", err, out, tc.want)
			}
			if strings.Contains(out, passwordKey) {
				t.Errorf("the refusal shows the password key")
			}
		})
	}
}

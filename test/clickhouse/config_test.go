package clickhouse

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/child"
	"productanalytics/internal/stack"
)

// TestCubeRefusesAnIncompleteStore: Cube in ClickHouse mode refuses to
// start without the server or a long enough password key, and its query
// guard cannot be turned off there.
func TestCubeRefusesAnIncompleteStore(t *testing.T) {
	ports, err := child.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
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
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "server.js")
			cmd.Dir = stack.CubeDir(root)
			cmd.Env = append(withoutCubeEnv(os.Environ()), "CUBEJS_API_SECRET="+stack.LocalCubeKey, "CUBE_PORT="+strconv.Itoa(ports[0]))
			cmd.Env = append(cmd.Env, tc.env...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("Cube did not exit within 30 s:\n%s", out)
			}
			if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "cube listening") {
				t.Fatalf("got %v:\n%s\nwant a refusal with %q", err, out, tc.want)
			}
			if strings.Contains(string(out), passwordKey) {
				t.Errorf("the refusal shows the password key")
			}
		})
	}
}

// withoutCubeEnv drops the variables server.js and Cube read, so that the
// test's own environment cannot change the outcome.
func withoutCubeEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CUBE_") && !strings.HasPrefix(kv, "CUBEJS_") {
			out = append(out, kv)
		}
	}
	return out
}

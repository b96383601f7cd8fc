package isolation

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

// TestQueryGuardOffOnlyInTestMode: Cube refuses to start without its query
// guard unless the test model is on, and refuses a value it does not know.
func TestQueryGuardOffOnlyInTestMode(t *testing.T) {
	ports, err := child.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"off without the test model", []string{"CUBE_QUERY_GUARD=off"}, "CUBE_QUERY_GUARD=off is for tests only and needs CUBE_TEST_MODEL=1"},
		{"off with another test model value", []string{"CUBE_QUERY_GUARD=off", "CUBE_TEST_MODEL=true"}, "needs CUBE_TEST_MODEL=1"},
		{"unknown value", []string{"CUBE_QUERY_GUARD=disabled", "CUBE_TEST_MODEL=1"}, "CUBE_QUERY_GUARD must be on or off, got 'disabled'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "server.js")
			cmd.Dir = stack.CubeDir(root)
			cmd.Env = append(withoutCubeEnv(os.Environ()),
				"CUBEJS_API_SECRET="+stack.LocalCubeKey,
				"CUBE_DATA_DIR="+dataDir,
				"CUBE_PORT="+strconv.Itoa(ports[0]))
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("Cube did not exit within 30 s:\n%s", out)
			}
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("want a refusal with %q, got %v:\n%s", tt.want, err, out)
			}
			if strings.Contains(string(out), "cube listening") {
				t.Fatalf("Cube listened:\n%s", out)
			}
		})
	}
}

// withoutCubeEnv drops the variables server.js reads, so that the test's
// own environment cannot change the outcome.
func withoutCubeEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CUBE_") && !strings.HasPrefix(kv, "CUBEJS_") {
			out = append(out, kv)
		}
	}
	return out
}

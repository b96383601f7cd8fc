package isolation

import (
	"context"
	"strings"
	"testing"

	"productanalytics/internal/stack"
)

// TestQueryGuardOffOnlyInTestMode: Cube refuses to start without its query
// guard unless the test model is on, and refuses a value it does not know.
func TestQueryGuardOffOnlyInTestMode(t *testing.T) {
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
			out, err := stack.CubeRefusal(context.Background(), root, append([]string{"CUBE_DATA_DIR=" + dataDir}, tt.env...)...)
			if err != nil || !strings.Contains(out, tt.want) {
				t.Fatalf("want a refusal with %q, got %v:\n%s", tt.want, err, out)
			}
		})
	}
}

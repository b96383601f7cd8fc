package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// TestCubeClients runs Cube's own JavaScript client, @cubejs-client/core as
// GitLab's dashboards pin it, against the API: configured as GitLab's
// frontend configures it, and with its defaults (GET, bare token). Each
// answer is compared with the same client's answer straight from Cube
// (clients/cubejs-client.test.js).
func TestCubeClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(root, "test", "integration", "clients")
	if err := stack.InstallNodeModules(ctx, dir, "the client tests' @cubejs-client/core (npm ci)", os.Stderr); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", "cubejs-client.test.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"API_URL="+env.APIURL,
		"CALLER_TOKEN="+stack.Token(time.Hour, 1),
		"CUBE_URL="+env.CubeOf(1).URL(),
		"CUBE_TOKEN="+cubeToken(t, 1),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node --test: %v\n%s", err, out.String())
	}
	t.Logf("%s", out.String())
	// The client asked for gzip (Node's fetch does), and read gzipped
	// answers.
	wait.Until(t, "a gzipped answer in the API's log", func() bool {
		return strings.Contains(apiLogs.String(), `"encoding":"gzip"`)
	})
	// The default client did ask with GET (and a bare token, or nothing
	// would have answered): the API logged such calls.
	for _, endpoint := range []string{"load", "dry-run"} {
		want := `"method":"GET","status":200,`
		wait.Until(t, "a GET "+endpoint+" answered 200 in the API's log", func() bool {
			for _, line := range strings.Split(apiLogs.String(), "\n") {
				if strings.Contains(line, want) && strings.Contains(line, `"endpoint":"`+endpoint+`"`) {
					return true
				}
			}
			return false
		})
	}
}

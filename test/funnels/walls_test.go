package funnels

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
)

// TestModelWallAlone: with Cube's query guard off (the test model's mode),
// a project's own model is enough to keep another project's funnels out of
// its reach: project 2's Cube token asking for project 1's funnel straight
// from Cube gets the compiler's 400, while project 1's own answers.
func TestModelWallAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{
		Root: root, DataDir: eventsDir, CubeLog: log, FunnelsDir: funnelsDir,
		TestModel: true, WithoutQueryGuard: true,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logcheck.LastLines(log.String(), 10))
	}
	defer s.Close()
	q := `{"query":` + funnelQuery("install", end.AddDate(0, 0, -29), end.Add(24*time.Hour-time.Millisecond)) + `}`
	for _, c := range []struct {
		project int64
		status  int
		text    string
	}{
		{withoutFunnels, http.StatusBadRequest, "Cube 'install' not found for path 'install.count'"},
		{withFunnels, http.StatusOK, `"install.step"`},
	} {
		token, err := cube.MintToken(stack.LocalCubeKey, c.project, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		a, err := call(ctx, s.CubeURL+"/cubejs-api/v1/load", token, q)
		if err != nil {
			t.Fatal(err)
		}
		if a.status != c.status || !strings.Contains(string(a.body), c.text) {
			t.Errorf("project %d straight to Cube without the guard: %s, want %d with %s", c.project, a, c.status, c.text)
		}
	}
	if !strings.Contains(log.String(), "query guard OFF") {
		t.Error("Cube ran with its guard")
	}
}

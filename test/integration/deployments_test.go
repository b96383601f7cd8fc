package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/deploy"
)

// The projects of the tests below: project 1 on cube-2 by hashing, project
// 2 on cube-1 by its placement, and projects without events on both.
const (
	onSecond int64 = 1 // cube-2, by rendezvous hashing
	onFirst  int64 = 2 // cube-1, placed there (placements)
)

// placedOn is where the rule places project, computed here from the
// deployments and placements rather than asked of the stack.
func placedOn(t *testing.T, project int64) string {
	t.Helper()
	p, err := deploy.ParsePlacements(placements)
	if err != nil {
		t.Fatal(err)
	}
	r, err := deploy.NewRouter(env.Deployments(), p)
	if err != nil {
		t.Fatal(err)
	}
	return r.For(project).Name
}

// cubeIndex is the position of the Cube called name.
func cubeIndex(t *testing.T, name string) int {
	t.Helper()
	for i := range env.Cubes() {
		if env.Cube(i).Name() == name {
			return i
		}
	}
	t.Fatalf("no Cube %s", name)
	return -1
}

// servedBy waits until one Cube has logged request id, and returns it; it
// fails when another Cube logged it too.
func servedBy(t *testing.T, id string) string {
	t.Helper()
	mark := `"requestId":"` + id + `"`
	var served []string
	wait.Until(t, "a Cube's log of request "+id, func() bool {
		served = served[:0]
		for i := range env.Cubes() {
			if strings.Contains(env.Cube(i).Output(), mark) {
				served = append(served, env.Cube(i).Name())
			}
		}
		return len(served) > 0
	})
	if len(served) != 1 {
		t.Fatalf("request %s reached %v; one Cube only should see it", id, served)
	}
	return served[0]
}

// TestProjectsGoWhereTheRuleSays sends projects' loads through the API and
// asks each Cube, through its log, which requests it served.
func TestProjectsGoWhereTheRuleSays(t *testing.T) {
	if placedOn(t, onSecond) != "cube-2" || placedOn(t, onFirst) != "cube-1" {
		t.Fatalf("the suite's projects are not on both Cubes: %d on %s, %d on %s", onSecond, placedOn(t, onSecond), onFirst, placedOn(t, onFirst))
	}
	for project := int64(1); project <= 8; project++ {
		t.Run(fmt.Sprintf("project %d", project), func(t *testing.T) {
			want := placedOn(t, project)
			a := load(t, project, `{"measures":["TrackedEvents.count"]}`)
			// Projects past 2 have no events: Cube still answers them.
			if a.status != 200 && a.status != 404 {
				t.Fatalf("load: %s", a)
			}
			if got := servedBy(t, a.id); got != want {
				t.Fatalf("project %d was served by %s; the rule places it on %s", project, got, want)
			}
		})
	}
}

// TestCubeTokenOfOneDeploymentIsRefusedByTheOther: the token the API hands
// out with include_token is signed with its project's deployment's key, so
// the other deployment refuses it.
func TestCubeTokenOfOneDeploymentIsRefusedByTheOther(t *testing.T) {
	for _, project := range []int64{onFirst, onSecond} {
		token := cubeToken(t, project)
		own := placedOn(t, project)
		for i := range env.Cubes() {
			c := env.Cube(i)
			t.Run(fmt.Sprintf("project %d's token at %s", project, c.Name()), func(t *testing.T) {
				status, body := askCubeAt(t, c.URL(), token, "POST load", `{"measures":["TrackedEvents.count"]}`)
				switch {
				case c.Name() == own && status != 200:
					t.Fatalf("its own deployment answered %d %s", status, truncate(string(body), 300))
				case c.Name() != own && (status != 403 || !strings.Contains(string(body), "Invalid token")):
					t.Fatalf("another deployment answered %d %s; want 403 Invalid token", status, truncate(string(body), 300))
				}
			})
		}
	}
}

// TestContinueWaitStaysOnTheSecondDeployment: a query slower than Cube's
// continue-wait, on the second deployment, is re-sent to that Cube until
// it answers, and never to the other.
func TestContinueWaitStaysOnTheSecondDeployment(t *testing.T) {
	q := fmt.Sprintf(`{"measures":["SlowEvents.count"],"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["deploy-%d"]}]}`, time.Now().UnixNano())
	a := load(t, onSecond, q)
	if a.status != 200 {
		t.Fatalf("slow load: %s", a)
	}
	n := polls(t, a)
	if n < 1 {
		t.Fatalf("the API re-sent the query %d times; the slow query should need at least one Continue wait", n)
	}
	second := env.Cube(cubeIndex(t, "cube-2")).Output()
	first := env.Cube(cubeIndex(t, "cube-1")).Output()
	if sends(first, a.id) != 0 {
		t.Errorf("cube-1 received request %s, which is project %d's on cube-2", a.id, onSecond)
	}
	if sends := sends(second, a.id); sends != n+1 {
		t.Errorf("cube-2 logged %d sends of request %s; the API made %d (1 + %d re-sends)", sends, a.id, n+1, n)
	}
}

// sends counts the sends of request id a Cube's log shows: Cube logs
// "Load Request" for each.
func sends(log, id string) int {
	n := 0
	for l := range strings.Lines(log) {
		if strings.Contains(l, `"message":"Load Request",`) && strings.Contains(l, `"requestId":"`+id+`"`) {
			n++
		}
	}
	return n
}

// TestKilledCubeFailsOnlyItsProjects kills cube-1: its project is answered
// 502 "Cube is unreachable" at once while cube-2's still answers 200; once
// cube-1 is back, its project answers again.
func TestKilledCubeFailsOnlyItsProjects(t *testing.T) {
	killed := env.Cube(cubeIndex(t, "cube-1"))
	query := `{"measures":["TrackedEvents.count"]}`
	for _, p := range []int64{onFirst, onSecond} {
		if a := load(t, p, query); a.status != 200 {
			t.Fatalf("before: project %d: %s", p, a)
		}
	}
	if err := killed.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := killed.Start(ctx); err != nil {
				t.Errorf("restarting %s: %v", killed.Name(), err)
			}
		}
	})

	t.Run("its project: 502 at once", func(t *testing.T) {
		a := load(t, onFirst, query)
		if a.status != 502 || !strings.Contains(string(a.body), "Cube is unreachable") {
			t.Fatalf("project %d on the killed Cube: %s; want 502 Cube is unreachable", onFirst, a)
		}
		t.Logf("answered 502 in %s", a.took)
		if a.took > time.Second {
			t.Errorf("the 502 took %s; a refused connection is known at once", a.took)
		}
		if reason, _ := logLine(t, a)["reason"].(string); !strings.Contains(reason, "(deployment cube-1)") {
			t.Errorf("the log line's reason %q does not name the deployment", reason)
		}
	})
	t.Run("the other deployment's project: 200", func(t *testing.T) {
		for range 3 {
			if a := load(t, onSecond, query); a.status != 200 {
				t.Fatalf("project %d on the running Cube: %s", onSecond, a)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := killed.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	t.Run("back: its project answers again", func(t *testing.T) {
		var a answer
		wait.Until(t, fmt.Sprintf("project %d answered 200 by the restarted Cube", onFirst), func() bool {
			a = load(t, onFirst, query)
			return a.status == 200
		})
		if got := servedBy(t, a.id); got != "cube-1" {
			t.Fatalf("served by %s", got)
		}
	})
}

// TestEachDeploymentHasItsOwnKey: the stack gives every Cube a key of its
// own, so that the test above means something.
func TestEachDeploymentHasItsOwnKey(t *testing.T) {
	seen := map[string]string{}
	for i := range env.Cubes() {
		c := env.Cube(i)
		if other, dup := seen[c.Key()]; dup {
			t.Fatalf("%s and %s share a key", other, c.Name())
		}
		seen[c.Key()] = c.Name()
		if c.Key() != stack.LocalCubeKeyOf(i) {
			t.Errorf("%s's key is not LocalCubeKeyOf(%d)", c.Name(), i)
		}
	}
}

package faults

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The answers GitLab's callers get for each fault (shared/api's table).
const (
	unreachable  = "502 Bad Gateway: Cube is unreachable"
	timedOut     = "504 Gateway Timeout: Cube did not answer in time"
	keyRefused   = "502 Bad Gateway: Cube refused the API key"
	accessDown   = "503 Service Unavailable: caller access cannot be checked"
	cubeKeyDown  = "503 Service Unavailable: the Cube API key cannot be read"
	healthyCalls = 2
)

// warm waits until every target has served.
func warm(t *testing.T, trs ...*traffic) time.Time {
	t.Helper()
	begin := time.Now()
	for _, tr := range trs {
		tr.await(t, "served before the fault", begin, served(healthyCalls))
	}
	return time.Now()
}

func TestCubeKilled(t *testing.T) {
	trs := []*traffic{
		flow(t, localServer("local server", env.APIURL), 2),
		flow(t, function(t, "Lambda function", emulate(t, "killed", nil)), 1),
	}
	warm(t, trs...)
	if err := env.KillCube(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for _, tr := range trs {
		tr.await(t, "three answers with Cube down", killed, answered(3))
	}
	restarting := time.Now()
	if err := env.StartCube(context.Background()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for _, tr := range trs {
		tr.await(t, "served again once Cube was back", back, served(1))
		outage := tr.startedIn(killed, restarting)
		for _, a := range outage {
			// 502, not the 504 of a deadline: the API did not wait for one.
			if a.what() != unreachable {
				t.Errorf("%s, Cube down: got %s after %s; want %s", tr.name, a.what(), a.took(), unreachable)
			}
		}
		after := tr.startedIn(back, far)
		for _, a := range after {
			if a.status == 502 {
				t.Errorf("%s, Cube back: got %s; want Cube reached", tr.name, a.what())
			}
		}
		first, _ := firstServed(after)
		row(t, "Cube killed (SIGKILL), restarted on its port", tr.name, tally(outage), first.end.Sub(back))
	}
}

func TestCubeFrozen(t *testing.T) {
	trs := []*traffic{
		flow(t, localServer("local server", env.APIURL), 2),
		flow(t, function(t, "Lambda function", emulate(t, "frozen", nil)), 1),
	}
	warm(t, trs...)
	if err := env.FreezeCube(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			env.ThawCube()
		}
	}()
	frozen := time.Now()
	for _, tr := range trs {
		tr.await(t, "two answers with Cube frozen", frozen, answered(2))
	}
	thawing := time.Now()
	if err := env.ThawCube(); err != nil {
		t.Fatal(err)
	}
	thawed = true
	for _, tr := range trs {
		tr.await(t, "served again once Cube was thawed", thawing, served(1))
		outage := tr.startedIn(frozen, thawing)
		for _, a := range outage {
			if a.status == 200 && a.end.After(thawing) {
				continue // waited for Cube, which answered once resumed
			}
			// The request timeout's 504, well before the whole call's
			// deadline (and the function's timeout).
			if a.what() != timedOut || a.took() < requestTimeout || a.took() >= waitDeadline {
				t.Errorf("%s, Cube frozen: got %s after %s; want %s after the request timeout %s, before the deadline %s",
					tr.name, a.what(), a.took(), timedOut, requestTimeout, waitDeadline)
			}
		}
		first, _ := firstServed(tr.startedIn(thawing, far))
		row(t, "Cube frozen (SIGSTOP), then resumed (SIGCONT)", tr.name, tally(outage), first.end.Sub(thawing))
	}
}

func TestSecretsManagerKilled(t *testing.T) {
	trs := []*traffic{
		flow(t, localServer("local server", env.APIURL), 2),
		flow(t, function(t, "Lambda function", emulate(t, "secrets-warm", nil)), 1),
	}
	warm(t, trs...)
	if err := env.KillSecretsManager(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			if err := env.StartSecretsManager(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}()
	killed := time.Now()
	refused := func(as []answer) bool {
		return count(as, func(a answer) bool { return a.status == 503 }) >= 2
	}
	for _, tr := range trs {
		tr.await(t, "503 once the cached keys are past their TTL and stale window", killed, refused)
	}
	// A function started during the outage (a cold start) has no key at
	// all: it must answer 503 too, and recover by itself.
	cold := flow(t, function(t, "Lambda function, cold start in the outage", emulate(t, "secrets-cold", nil)), 1)
	cold.await(t, "an answer in the outage", killed, answered(1))
	restarting := time.Now()
	if err := env.StartSecretsManager(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	back := time.Now()
	trs = append(trs, cold)
	for _, tr := range trs {
		tr.await(t, "served again once Secrets Manager was back", back, served(1))
		outage := tr.startedIn(killed, restarting)
		first503 := -1
		for i, a := range outage {
			switch {
			case a.status == 200 && first503 >= 0 && a.start.After(outage[first503].end):
				t.Errorf("%s: served again at %s, after refusing at %s, with Secrets Manager still down",
					tr.name, a.start.Sub(killed), outage[first503].start.Sub(killed))
			case a.status == 200:
			case a.what() == accessDown || a.what() == cubeKeyDown:
				if first503 < 0 {
					first503 = i
				}
			default:
				t.Errorf("%s, Secrets Manager down: got %s; want 200 from the cache, then %q or %q", tr.name, a.what(), accessDown, cubeKeyDown)
			}
		}
		if first503 < 0 {
			t.Fatalf("%s: no 503 in the outage: %s", tr.name, tally(outage))
		}
		refusedAfter := outage[first503].start.Sub(killed)
		if tr != cold {
			// Cached keys serve for the stale window past their TTL.
			if count(outage, func(a answer) bool { return a.status == 200 }) == 0 || refusedAfter < secretStaleFor/2 {
				t.Errorf("%s: first 503 %s after the outage began, %s; want 200s from the cache for about the stale window (%s)",
					tr.name, refusedAfter, tally(outage), secretStaleFor)
			}
		}
		got := tally(outage)
		if tr != cold {
			got += fmt.Sprintf("; first 503 %s after the kill", refusedAfter.Round(10*time.Millisecond))
		}
		first, _ := firstServed(tr.startedIn(back, far))
		row(t, "Secrets Manager (moto_server) killed, restarted with the keys", tr.name, got, first.end.Sub(back))
	}
}

func TestCubeKeyRotated(t *testing.T) {
	// With a cache of an hour, the new key can only be learnt from Cube's
	// 403: these callers show the refresh working.
	long := map[string]string{"SECRET_CACHE_TTL": "1h", "SECRET_STALE_FOR": "1h"}
	other, err := env.StartAPI(t.Context(), long, apiLogs)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	trs := []*traffic{
		flow(t, localServer("local server, key cached 1 s", env.APIURL), 2),
		flow(t, localServer("local server, key cached 1 h", other.URL), 2),
		flow(t, function(t, "Lambda function, key cached 1 h", emulate(t, "rotated", long)), 1),
	}
	warm(t, trs...)
	key := fmt.Sprintf("rotated-cube-key-%d", time.Now().UnixNano())
	keys = append(keys, key)
	rotating := time.Now()
	if err := env.RotateCubeKey(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for i, tr := range trs {
		tr.await(t, "three calls served once Cube was back with the new key", back, served(3))
		during, after := tr.startedIn(rotating, back), tr.startedIn(back, far)
		for _, a := range after {
			if a.status != 200 {
				t.Errorf("%s, after the rotation: got %s; want 200", tr.name, a.what())
			}
		}
		for _, a := range during {
			ok := a.status == 200 || a.what() == unreachable
			if i == 0 {
				// Its cache may take the new key in the moment between
				// the secret's change and Cube's restart.
				ok = ok || a.what() == keyRefused
			}
			if !ok {
				t.Errorf("%s, during the rotation: got %s; want 200, or %q while Cube restarts", tr.name, a.what(), unreachable)
			}
		}
		failures := count(during, func(a answer) bool { return a.status != 200 }) + count(after, func(a answer) bool { return a.status != 200 })
		first, _ := firstServed(after)
		row(t, "Cube key rotated (new secret, Cube restarted with it)", tr.name,
			fmt.Sprintf("%d failures: during Cube's %s restart %s; after it none of %d failed", failures,
				back.Sub(rotating).Round(10*time.Millisecond), tally(during), len(after)), first.end.Sub(back))
	}
}

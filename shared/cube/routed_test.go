package cube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"productanalytics/shared/deploy"
)

// routedPair is two fake Cubes, each with a key of its own, behind a Routed.
type routedPair struct {
	cubes  map[string]*fakeCube
	routed *Routed
}

func newRoutedPair(t *testing.T, extra ...deploy.Deployment) *routedPair {
	t.Helper()
	clock := testClock()
	p := &routedPair{cubes: map[string]*fakeCube{}}
	keys := map[string]string{}
	var deps []deploy.Deployment
	for _, name := range []string{"cube-a", "cube-b"} {
		key := "key-of-" + name
		// Each fake Cube knows its own key only: a token signed with the
		// other's is a problem the test reports.
		f := newFakeCube(t, clock, key)
		p.cubes[name] = f
		keys[name] = key
		deps = append(deps, deploy.Deployment{Name: name, URL: f.srv.URL, KeySecretID: "secret-" + name})
	}
	deps = append(deps, extra...)
	router, err := deploy.NewRouter(deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.routed, err = NewRouted(router, func(d deploy.Deployment) (*Client, error) {
		return NewClient(&fakeKeys{key: keys[d.Name], refreshTo: keys[d.Name]}, Options{BaseURL: d.URL, Issuer: testIssuer, Now: clock}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *routedPair) request(project int64) Request {
	req := Request{Endpoint: Load, ProjectID: project, Query: json.RawMessage(testQuery), RequestID: fmt.Sprintf("req-%d", project)}
	if f, ok := p.cubes[p.routed.Router().For(project).Name]; ok {
		f.expect(req)
	}
	return req
}

func TestRoutedSendsEachProjectToItsCube(t *testing.T) {
	p := newRoutedPair(t)
	want := map[string]int{}
	for project := int64(1); project <= 40; project++ {
		name := p.routed.Router().For(project).Name
		want[name]++
		res, err := p.routed.Do(context.Background(), p.request(project))
		if err != nil {
			t.Fatalf("project %d: %v", project, err)
		}
		if res.Deployment != name || string(res.Body) != testAnswer {
			t.Fatalf("project %d: answered by %q with %q, want %s", project, res.Deployment, res.Body, name)
		}
	}
	for name, f := range p.cubes {
		t.Run(name, func(t *testing.T) {
			calls := f.seenCalls()
			if len(calls) != want[name] || want[name] == 0 {
				t.Fatalf("%s received %d calls, want %d (of 40)", name, len(calls), want[name])
			}
			for _, c := range calls {
				var project int64
				fmt.Sscanf(c.requestID, "req-%d", &project)
				if got := p.routed.Router().For(project).Name; got != name {
					t.Errorf("%s received project %d, which is %s's", name, project, got)
				}
				if c.signedWith != "key-of-"+name {
					t.Errorf("%s received a token signed with %q", name, c.signedWith)
				}
			}
		})
	}
}

func TestRoutedContinueWaitStaysOnItsCube(t *testing.T) {
	tests := []struct{ name string }{{"cube-a"}, {"cube-b"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRoutedPair(t)
			cw := reply{status: 200, body: continueWait}
			p.cubes[tt.name].script = []reply{cw, cw, {status: 200, body: testAnswer}}
			project := firstProjectOn(p.routed.Router(), tt.name)
			res, err := p.routed.Do(context.Background(), p.request(project))
			if err != nil {
				t.Fatal(err)
			}
			if res.Polls != 2 || res.Deployment != tt.name {
				t.Fatalf("polls %d on %q, want 2 on %s", res.Polls, res.Deployment, tt.name)
			}
			for name, f := range p.cubes {
				want := 0
				if name == tt.name {
					want = 3
				}
				if n := len(f.seenCalls()); n != want {
					t.Errorf("%s received %d sends, want %d", name, n, want)
				}
			}
		})
	}
}

func TestRoutedUnreachableCubeFailsOnlyItsProjects(t *testing.T) {
	gone := httptest.NewServer(nil)
	gone.Close()
	p := newRoutedPair(t, deploy.Deployment{Name: "cube-c", URL: gone.URL, KeySecretID: "secret-cube-c"})
	tests := []struct {
		deployment string
		wantErr    error
	}{
		{"cube-a", nil},
		{"cube-b", nil},
		{"cube-c", ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.deployment, func(t *testing.T) {
			project := firstProjectOn(p.routed.Router(), tt.deployment)
			res, err := p.routed.Do(context.Background(), p.request(project))
			if tt.wantErr == nil {
				if err != nil || res.Deployment != tt.deployment {
					t.Fatalf("project %d: %v, answered by %q", project, err, res.Deployment)
				}
				return
			}
			var ce *Error
			if !errors.Is(err, tt.wantErr) || !errors.As(err, &ce) || ce.Deployment != tt.deployment {
				t.Fatalf("project %d: error %v, want %v from %s", project, err, tt.wantErr, tt.deployment)
			}
			if !strings.Contains(err.Error(), "(deployment "+tt.deployment+")") {
				t.Errorf("the error %q does not name the deployment", err)
			}
		})
	}
}

func TestRoutedClient(t *testing.T) {
	p := newRoutedPair(t)
	tests := []struct {
		name string
		ok   bool
	}{{"cube-a", true}, {"cube-b", true}, {"cube-z", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := p.routed.Client(tt.name)
			if ok != tt.ok || (ok && c.base != p.cubes[tt.name].srv.URL+"/cubejs-api/v1/") {
				t.Fatalf("Client(%s): %v %v", tt.name, c, ok)
			}
			if !ok {
				return
			}
			project := firstProjectOn(p.routed.Router(), tt.name)
			d, pc := p.routed.For(project)
			if d.Name != tt.name || pc != c {
				t.Fatalf("For(%d): %s %p, want %s %p", project, d.Name, pc, tt.name, c)
			}
		})
	}
}

func TestNewRoutedReportsAClientItCannotBuild(t *testing.T) {
	router, err := deploy.NewRouter([]deploy.Deployment{{Name: "cube-a", URL: "http://127.0.0.1:1", KeySecretID: "k"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewRouted(router, func(deploy.Deployment) (*Client, error) { return nil, errors.New("no secret") })
	if err == nil || !strings.Contains(err.Error(), "building the client of Cube deployment cube-a: no secret") {
		t.Fatalf("error %v", err)
	}
}

func firstProjectOn(r *deploy.Router, name string) int64 {
	for p := int64(1); p < 1_000_000; p++ {
		if r.For(p).Name == name {
			return p
		}
	}
	panic("no project on " + name)
}

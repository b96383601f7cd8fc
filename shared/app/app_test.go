package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/motoserver"
	"productanalytics/internal/wait"
	"productanalytics/shared/config"
	"productanalytics/shared/cube"
	"productanalytics/shared/metrics"
)

// keyedCube plays a Cube that accepts only tokens signed with its current
// key, and remembers the tenants it served.
type keyedCube struct {
	name string
	srv  *httptest.Server

	mu     sync.Mutex
	key    string
	served []string
}

func newKeyedCube(t *testing.T, name, key string) *keyedCube {
	c := &keyedCube{name: name, key: key}
	c.srv = httptest.NewServer(c)
	t.Cleanup(c.srv.Close)
	return c
}

func (c *keyedCube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var claims struct {
		AppID string `json:"appId"`
		jwt.RegisteredClaims
	}
	_, err := jwt.ParseWithClaims(r.Header.Get("Authorization"), &claims, func(*jwt.Token) (any, error) { return []byte(c.key), nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":"Invalid token"}`)
		return
	}
	c.served = append(c.served, claims.AppID)
	fmt.Fprintf(w, `{"served_by":%q}`, c.name)
}

func (c *keyedCube) rotate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key = key
}

func (c *keyedCube) tenants() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.served...)
}

// TestCubeClients builds the clients of two deployments whose keys are in
// Secrets Manager (moto): each project's calls reach its deployment with a
// token signed with that deployment's key, and rotating one deployment's key
// is picked up for its projects alone.
func TestCubeClients(t *testing.T) {
	moto := motoserver.Start(t)
	cubes := map[string]*keyedCube{}
	var spec []string
	for _, name := range []string{"cube-1", "cube-2"} {
		key := "first-key-of-" + name
		arn := moto.CreateSecret(t, "cube-key-"+name, key)
		cubes[name] = newKeyedCube(t, name, key)
		spec = append(spec, name+"="+cubes[name].srv.URL+"="+arn)
	}
	cfg, err := config.LoadCube(func(k string) string {
		return map[string]string{"CUBE_DEPLOYMENTS": strings.Join(spec, ","), "CUBE_PLACEMENTS": "7=cube-1"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	routed, err := CubeClients(cfg, moto.Client(), &metrics.Counters{})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(t *testing.T, project int64) string {
		t.Helper()
		res, err := routed.Do(context.Background(), cube.Request{Endpoint: cube.Load, ProjectID: project, Query: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatalf("project %d: %v", project, err)
		}
		var body struct {
			ServedBy string `json:"served_by"`
		}
		if err := json.Unmarshal(res.Body, &body); err != nil || body.ServedBy != res.Deployment {
			t.Fatalf("project %d: answered %s by %q", project, res.Body, res.Deployment)
		}
		return body.ServedBy
	}
	tests := []struct {
		name   string
		rotate string // the deployment whose key is rotated first
	}{
		{"first keys", ""},
		{"cube-2's key rotated", "cube-2"},
		{"cube-1's key rotated", "cube-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.rotate != "" {
				key := "rotated-key-of-" + tt.rotate
				moto.PutSecretValue(t, "cube-key-"+tt.rotate, key)
				cubes[tt.rotate].rotate(key)
				// Cube's 403 makes the cache read the secret again, at
				// most once a second (secrets.Options.MinRefreshInterval).
				project := firstOn(routed, tt.rotate)
				wait.Until(t, "the rotated key of "+tt.rotate+" read again", func() bool {
					_, err := routed.Do(context.Background(), cube.Request{Endpoint: cube.Load, ProjectID: project, Query: json.RawMessage(`{}`)})
					return err == nil
				})
			}
			for _, project := range []int64{1, 2, 3, 5, 7} {
				want := routed.Router().For(project).Name
				if project == 7 {
					want = "cube-1"
				}
				if got := ask(t, project); got != want {
					t.Errorf("project %d answered by %s, want %s", project, got, want)
				}
			}
		})
	}
	for name, c := range cubes {
		for _, tenant := range c.tenants() {
			var project int64
			fmt.Sscanf(tenant, "gitlab_project_%d", &project)
			if got := routed.Router().For(project).Name; got != name {
				t.Errorf("%s served %s, which is %s's", name, tenant, got)
			}
		}
	}
}

func firstOn(routed *cube.Routed, name string) int64 {
	for p := int64(1); ; p++ {
		if routed.Router().For(p).Name == name {
			return p
		}
	}
}

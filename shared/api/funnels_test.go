package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/seed"
	"productanalytics/shared/funnels"
)

// funnelsHandler serves with project 1's definitions of a folder.
func funnelsHandler(t *testing.T, f *fakeCube, src funnels.Source) *Handler {
	t.Helper()
	return NewHandler(newTestChecker(), newTestClient(f), slog.New(slog.NewJSONHandler(logs, nil)),
		Options{Funnels: funnels.NewCache(src, time.Minute, 5*time.Second, 100)})
}

func funnelDefs(t *testing.T) funnels.Dir {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "1"), 0o700); err != nil {
		t.Fatal(err)
	}
	def := "seconds_to_convert: 600\nsteps:\n  - {name: home, action: pageview, target: /}\n  - {name: install, action: pageview, target: /install}\n"
	if err := os.WriteFile(filepath.Join(root, "1", "Install.yml"), []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	return funnels.Dir{Root: root}
}

type failingSource struct{}

func (failingSource) Files(context.Context, int64) ([]funnels.File, error) {
	return nil, errors.New("the bucket is unreachable")
}

// TestFunnelMembers: a funnel's members reach Cube for the project that
// has the funnel; for any other, and for members a funnel does not have,
// the answer is Cube's 400 for an unknown member, and Cube is not asked.
func TestFunnelMembers(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := funnelsHandler(t, f, funnelDefs(t))
	both := callerToken(t, jwt.MapClaims{"projects": []int{1, 2}})
	query := func(members ...string) string {
		return seed.Body(`{"measures":["` + members[0] + `"],"dimensions":["` + strings.Join(members[1:], `","`) + `"]}`)
	}
	for _, c := range []struct {
		name, path, body string
		status           int
		message          string
	}{
		{"own funnel", "/projects/1/product_analytics/request/load", query("install.count", "install.step"), 200, ""},
		{"own funnel by day", "/projects/1/product_analytics/request/load", query("install.count", "install.date.day"), 200, ""},
		{"another project's funnel", "/projects/2/product_analytics/request/load", query("install.count", "install.step"), 400, "Cube 'install' not found for path 'install.count'"},
		{"a funnel nobody has", "/projects/1/product_analytics/request/load", query("checkout.count", "checkout.step"), 400, "Cube 'checkout' not found for path 'checkout.count'"},
		{"not a funnel's member", "/projects/1/product_analytics/request/load", query("install.count", "install.sql"), 400, "'sql' not found for path 'install.sql'"},
		{"in a filter", "/projects/2/product_analytics/request/dry-run", seed.Body(`{"dimensions":["TrackedEvents.pageUrlpath"],"filters":[{"or":[{"member":"install.step","operator":"equals","values":["1"]}]}]}`), 400, "Cube 'install' not found for path 'install.step'"},
		{"shared cubes", "/projects/2/product_analytics/request/load", seedTracked, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := f.calls.Load()
			w := serve(h, "POST", c.path, "Bearer "+both, c.body)
			if w.Code != c.status {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, c.status)
			}
			if c.status != 200 {
				if got := message(t, w); got != c.message {
					t.Errorf("message %q, want %q", got, c.message)
				}
				if f.calls.Load() != before {
					t.Error("Cube was asked")
				}
			}
		})
	}
	t.Run("definitions unreadable", func(t *testing.T) {
		h := funnelsHandler(t, f, failingSource{})
		w := serve(h, "POST", "/projects/1/product_analytics/request/load", "Bearer "+both, query("install.count", "install.step"))
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(message(t, w), "funnel definitions cannot be read") || strings.Contains(w.Body.String(), "bucket") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if w := serve(h, "POST", "/projects/1/product_analytics/request/load", "Bearer "+both, seedTracked); w.Code != 200 {
			t.Errorf("a query of the shared cubes: %d %s", w.Code, w.Body)
		}
	})
}

// TestListFunnels: GitLab's shape for a project with funnels, [] without,
// and the access rules of every other call.
func TestListFunnels(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := funnelsHandler(t, f, funnelDefs(t))
	both := "Bearer " + callerToken(t, jwt.MapClaims{"projects": []int{1, 2}})
	w := serve(h, "GET", "/api/v4/projects/1/product_analytics/funnels", both, "")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var list []struct {
		Name  string   `json:"name"`
		SQL   string   `json:"sql"`
		Steps []string `json:"steps"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list) != 1 {
		t.Fatalf("%s: %v", w.Body, err)
	}
	if l := list[0]; l.Name != "install" || !strings.Contains(l.SQL, "windowFunnel(600, 'strict_order')") ||
		strings.Join(l.Steps, "|") != "page_urlpath = '/'|page_urlpath = '/install'" {
		t.Errorf("listed %+v", l)
	}
	if w := serve(h, "GET", "/projects/2/product_analytics/funnels", both, ""); w.Code != 200 || w.Body.String() != "[]" {
		t.Errorf("project 2: %d %s", w.Code, w.Body)
	}
	for _, c := range []struct {
		name, method, path, auth string
		status                   int
	}{
		{"no token", "GET", "/projects/1/product_analytics/funnels", "", 401},
		{"a project not in the token", "GET", "/projects/3/product_analytics/funnels", both, 404},
		{"not a project id", "GET", "/projects/x'/product_analytics/funnels", both, 400},
		{"POST", "POST", "/projects/1/product_analytics/funnels", both, 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			if w := serve(h, c.method, c.path, c.auth, ""); w.Code != c.status {
				t.Errorf("%d %s, want %d", w.Code, w.Body, c.status)
			}
		})
	}
	if f.calls.Load() != 0 {
		t.Error("the listing asked Cube")
	}
}

package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"productanalytics/shared/dashboards"
)

// root is the project's root, relative to this package.
const root = "../.."

// TestEveryQueryIsDrawnOnce checks the layout against shared/dashboards:
// each query is one panel, and each panel draws a query of it.
func TestEveryQueryIsDrawnOnce(t *testing.T) {
	ds := Dashboards()
	drawn := map[string]int{}
	for _, d := range ds {
		for _, p := range d.Panels {
			drawn[p.Name]++
			switch p.Visualization {
			case SingleStat, LineChart, ColumnChart, DataTable:
			default:
				t.Errorf("%s: visualization %q is not one the page draws", p.Name, p.Visualization)
			}
			var q struct {
				TimeDimensions []any
				Dimensions     []string
			}
			json.Unmarshal(p.Query, &q)
			overTime := len(q.TimeDimensions) > 0
			if (p.Visualization == LineChart || p.Visualization == ColumnChart) != overTime {
				t.Errorf("%s: a %s for a query with %d time dimensions", p.Name, p.Visualization, len(q.TimeDimensions))
			}
			if (p.Visualization == DataTable) != (len(q.Dimensions) > 0) {
				t.Errorf("%s: a %s for a query with dimensions %v", p.Name, p.Visualization, q.Dimensions)
			}
		}
	}
	for _, q := range dashboards.Template() {
		if drawn[q.Name] != 1 {
			t.Errorf("query %s is drawn by %d panels, want 1", q.Name, drawn[q.Name])
		}
		delete(drawn, q.Name)
	}
	for name := range drawn {
		t.Errorf("panel %s has no query in shared/dashboards", name)
	}
	if _, err := withQueries([]Dashboard{{Slug: "x", Panels: []Panel{{Name: "nope"}}}}, dashboards.Template()); err == nil {
		t.Error("a panel without a query was accepted")
	}
}

// TestConfigIsTheTemplate checks that dashboards.json hands the page the
// queries of shared/dashboards, with the placeholders it fills in.
func TestConfigIsTheTemplate(t *testing.T) {
	var c Config
	if err := json.Unmarshal(ConfigJSON(Dashboards()), &c); err != nil {
		t.Fatal(err)
	}
	if c.From != dashboards.FromPlaceholder || c.To != dashboards.ToPlaceholder || len(c.Ranges) == 0 {
		t.Fatalf("from %q to %q ranges %v", c.From, c.To, c.Ranges)
	}
	byName := map[string]string{}
	for _, q := range dashboards.Template() {
		byName[q.Name] = string(q.Query)
	}
	for _, d := range c.Dashboards {
		for _, p := range d.Panels {
			var compact bytes.Buffer
			json.Compact(&compact, p.Query)
			if compact.String() != byName[p.Name] {
				t.Errorf("%s: %s, want shared/dashboards' %s", p.Name, p.Query, byName[p.Name])
			}
		}
	}
}

// apiAnswer stands for the API: it answers every request it gets with its
// 404, as the real one does for unknown paths.
var apiAnswer = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"message":"404 Not Found"}`))
})

func get(h http.Handler, method, target, host string) *httptest.ResponseRecorder {
	return getFrom(h, method, target, host, "127.0.0.1:50000")
}

// getFrom is get from the peer address peer.
func getFrom(h http.Handler, method, target, host, peer string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = peer
	if host != "" {
		r.Host = host
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHandlerServesThePageAndPassesTheRest checks that the page's paths
// are the page and every other request is the API's.
func TestHandlerServesThePageAndPassesTheRest(t *testing.T) {
	dir := t.TempDir()
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.source))
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte("contents of "+f.path), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := func(context.Context) (Local, error) {
		return Local{Projects: []int64{1, 2}, Token: "tok", Expires: time.Unix(1e9, 0)}, nil
	}
	h := Handler(Options{Root: dir, Local: local}, apiAnswer)

	tests := []struct {
		name, method, target, host string
		status                     int
		body                       string // its start
	}{
		{"the page", "GET", "/", "", 200, "contents of index.html"},
		{"its script", "GET", "/app.js", "", 200, "contents of app.js"},
		{"a library", "GET", "/vendor/echarts.min.js", "", 200, "contents of vendor/echarts.min.js"},
		{"HEAD of the page", "HEAD", "/", "", 200, ""},
		{"the panels", "GET", "/dashboards.json", "", 200, "{"},
		{"the local token", "GET", "/local.json", "127.0.0.1:3000", 200, `{"projects":[1,2],"token":"tok"`},
		{"the local token by name", "GET", "/local.json", "localhost:3000", 200, `{"projects":[1,2]`},
		{"the local token through another name", "GET", "/local.json", "rebound.example.com:3000", 404, `{"message":"404 Not Found"}`},
		{"an unknown path", "GET", "/nope", "", 404, `{"message":"404 Not Found"}`},
		{"a page path, other method", "POST", "/", "", 404, `{"message":"404 Not Found"}`},
		{"a file of the page's folder not served", "GET", "/package.json", "", 404, `{"message":"404 Not Found"}`},
		{"a library's other file", "GET", "/vendor/echarts.js", "", 404, `{"message":"404 Not Found"}`},
		{"an API route", "POST", "/api/v4/projects/1/product_analytics/request/load", "", 404, `{"message":"404 Not Found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(h, tt.method, tt.target, tt.host)
			if w.Code != tt.status || !strings.HasPrefix(w.Body.String(), tt.body) {
				t.Fatalf("%d %.80q; want %d %q...", w.Code, w.Body.String(), tt.status, tt.body)
			}
			if tt.status == 200 && w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no nosniff")
			}
		})
	}
	if cc := get(h, "GET", "/local.json", "127.0.0.1").Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("local.json carries a token but is cached: Cache-Control %q", cc)
	}
	// The Host header is the caller's: a peer elsewhere naming localhost
	// (the stack listening on every address) gets no token.
	for _, peer := range []string{"192.0.2.7:40000", "[2001:db8::7]:40000", "10.0.0.3:1", "not an address"} {
		for _, host := range []string{"localhost:3000", "127.0.0.1:3000", "[::1]:3000"} {
			if w := getFrom(h, "GET", "/local.json", host, peer); w.Code != 404 || strings.Contains(w.Body.String(), "tok") {
				t.Errorf("local.json from peer %s with Host %s: %d %.80q; want 404", peer, host, w.Code, w.Body.String())
			}
		}
	}
	if w := getFrom(h, "GET", "/local.json", "localhost:3000", "[::1]:40000"); w.Code != 200 {
		t.Errorf("local.json from ::1: %d, want 200", w.Code)
	}
	noLocal := Handler(Options{Root: dir}, apiAnswer)
	if w := get(noLocal, "GET", "/local.json", "127.0.0.1"); w.Code != 404 {
		t.Errorf("local.json served without Local: %d", w.Code)
	}
	failing := Handler(Options{Root: dir, Local: func(context.Context) (Local, error) { return Local{}, errors.New("no data") }}, apiAnswer)
	if w := get(failing, "GET", "/local.json", "127.0.0.1"); w.Code != 503 || !strings.Contains(w.Body.String(), "no data") {
		t.Errorf("a failing Local: %d %s", w.Code, w.Body.String())
	}
}

// TestExportIsWhatTheStackServes checks that the exported files are the
// ones the handler serves, at the same paths.
func TestExportIsWhatTheStackServes(t *testing.T) {
	src := t.TempDir()
	for _, f := range files {
		path := filepath.Join(src, filepath.FromSlash(f.source))
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, []byte("contents of "+f.path), 0o644)
	}
	out := t.TempDir()
	if err := Export(src, out, nil); err != nil {
		t.Fatal(err)
	}
	h := Handler(Options{Root: src}, apiAnswer)
	for _, path := range append([]string{ConfigFile}, pathsOf(files)...) {
		b, err := os.ReadFile(filepath.Join(out, path))
		if err != nil {
			t.Errorf("not exported: %v", err)
			continue
		}
		url := "/" + path
		if path == "index.html" {
			url = "/" // where the page is; /index.html redirects there
		}
		if served := get(h, "GET", url, "").Body.String(); served != string(b) {
			t.Errorf("%s: exported %.60q, served %.60q", path, b, served)
		}
	}
	if _, err := os.Stat(filepath.Join(out, LocalFile)); err == nil {
		t.Error("the export holds local.json, which is the local stack's only")
	}
	os.Remove(filepath.Join(src, filepath.FromSlash(files[len(files)-1].source)))
	if err := Export(src, t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "node modules") {
		t.Errorf("an export without the libraries: %v", err)
	}
}

func pathsOf(fs []file) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.path)
	}
	return out
}

// TestFilesExist checks the page's files are where the handler looks:
// its own sources always, the libraries once installed (the packages the
// lockfile pins).
func TestFilesExist(t *testing.T) {
	for _, f := range files {
		if strings.Contains(f.source, "/node_modules/") {
			continue // installed by the stack (npm ci), not tracked
		}
		if _, err := os.Stat(filepath.Join(root, f.source)); err != nil {
			t.Error(err)
		}
	}
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(root, Dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_, rest, ok := strings.Cut(f.source, "/node_modules/")
		if !ok {
			continue
		}
		pkg := rest[:strings.Index(rest, "/dist/")]
		if lock.Packages["node_modules/"+pkg].Version == "" {
			t.Errorf("%s comes from %s, which package-lock.json does not pin", f.path, pkg)
		}
	}
}

// TestNotInTheLambdaBootstraps checks that no Lambda function's program
// links the page: it is the local stack's and the static host's only.
func TestNotInTheLambdaBootstraps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./functions/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./functions/...: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list found only %v", deps)
	}
	for _, d := range deps {
		if d == "productanalytics/internal/web" || d == "productanalytics/internal/stack" {
			t.Errorf("a Lambda function links %s", d)
		}
	}
}

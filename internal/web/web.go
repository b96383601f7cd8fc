package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Dir is the folder of the page's sources under the project root; its
// package.json pins the libraries the page loads.
const Dir = "web"

// file is one file of the page: its path relative to the page's address,
// and its source relative to the project root.
type file struct{ path, source string }

// files are the page's files as a browser fetches them: the same paths on
// the local stack (under /) and in an export (under any address). The
// libraries are their packages' prebuilt browser bundles, so that nothing
// needs building.
var files = []file{
	{"index.html", Dir + "/index.html"},
	{"app.js", Dir + "/app.js"},
	{"style.css", Dir + "/style.css"},
	{"vendor/echarts.min.js", Dir + "/node_modules/echarts/dist/echarts.min.js"},
	{"vendor/cubejs-client-core.umd.js", Dir + "/node_modules/@cubejs-client/core/dist/cubejs-client-core.umd.js"},
}

// The page's generated files: ConfigFile always, LocalFile on the local
// stack only (its absence tells the page to ask for an API and a token).
const (
	ConfigFile = "dashboards.json"
	LocalFile  = "local.json"
)

// Local is what local.json tells the page on the local stack.
type Local struct {
	// Projects are the projects with demo data.
	Projects []int64 `json:"projects"`
	// Token is a caller token that reads them, and Expires when it stops
	// doing so; empty when the stack's API checks callers another way
	// (AUTH_MODE=gitlab, a JWKS), so the page asks for one.
	Token   string    `json:"token,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// Options configure the page's handler.
type Options struct {
	// Root is the project root, which holds Dir.
	Root string
	// Dashboards are drawn by the page (default: Dashboards()).
	Dashboards []Dashboard
	// Local answers local.json; nil serves none.
	Local func(context.Context) (Local, error)
}

// Handler serves the page's files at their paths under / and passes every
// other request to api, so that the API's routes and answers, its 404 for
// an unknown path included, stay as they are.
func Handler(o Options, api http.Handler) http.Handler {
	if o.Dashboards == nil {
		o.Dashboards = Dashboards()
	}
	config := ConfigJSON(o.Dashboards)
	sources := make(map[string]string, len(files))
	for _, f := range files {
		sources["/"+f.path] = filepath.Join(o.Root, filepath.FromSlash(f.source))
	}
	sources["/"] = sources["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			api.ServeHTTP(w, r)
			return
		}
		// Revalidated on every load, so that an edited page shows at once;
		// ServeFile answers 304 while it is unchanged.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch path := r.URL.Path; {
		case sources[path] != "":
			http.ServeFile(w, r, sources[path])
		case path == "/"+ConfigFile:
			w.Header().Set("Content-Type", "application/json")
			w.Write(config)
		case path == "/"+LocalFile && o.Local != nil && loopbackHost(r.Host) && loopbackPeer(r.RemoteAddr):
			serveLocal(w, r, o.Local)
		default:
			w.Header().Del("Cache-Control")
			w.Header().Del("X-Content-Type-Options")
			api.ServeHTTP(w, r)
		}
	})
}

// serveLocal answers local.json. It carries a caller token, so it is never
// cached.
func serveLocal(w http.ResponseWriter, r *http.Request, local func(context.Context) (Local, error)) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	l, err := local(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"message": "503 Service Unavailable: " + err.Error()})
		return
	}
	json.NewEncoder(w).Encode(l)
}

// loopbackHost reports whether the request was addressed to a loopback
// name. local.json hands out a token: a page of another site that had a
// name of its own resolve to 127.0.0.1 (DNS rebinding) must not read it.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackPeer reports whether the request came from this machine. The
// Host header is the caller's to choose: with the stack listening on every
// address (LISTEN=0.0.0.0), a peer elsewhere could send "Host: localhost".
func loopbackPeer(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Export writes the page into dir as static files, for any static host:
// the page's files, its libraries and dashboards.json. The page's node
// modules must be installed.
func Export(root, dir string, ds []Dashboard) error {
	if ds == nil {
		ds = Dashboards()
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(root, filepath.FromSlash(f.source)), filepath.Join(dir, filepath.FromSlash(f.path))); err != nil {
			return fmt.Errorf("exporting the page's %s: %w", f.path, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), ConfigJSON(ds), 0o644); err != nil {
		return fmt.Errorf("exporting the page's %s: %w", ConfigFile, err)
	}
	return nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w (are the page's node modules installed?)", err)
		}
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

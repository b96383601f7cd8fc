package gitlabtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Repository is a stand-in for the three calls of GitLab's REST API that
// read a folder of a project's repository at its default branch, as
// GitLab reads funnel definitions: GET /api/v4/projects/:id (the default
// branch), GET .../repository/tree?path=&ref= (the folder's files) and GET
// .../repository/files/:path/raw?ref= (a file). It knows one token, sent in
// PRIVATE-TOKEN; any other gets 401, as GitLab answers.
type Repository struct {
	*httptest.Server

	token string
	calls atomic.Int64
	mu    sync.Mutex
	// projects maps a project to its default branch and its files (path
	// within the repository: content).
	projects map[int64]repoProject
}

type repoProject struct {
	branch string
	files  map[string]string
}

// NewRepository starts a stand-in that accepts token. The caller must
// Close it.
func NewRepository(token string) *Repository {
	r := &Repository{token: token, projects: map[int64]repoProject{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// SetFiles makes project's default branch branch, holding files (path
// within the repository: content); nil files remove the project.
func (r *Repository) SetFiles(project int64, branch string, files map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if files == nil {
		delete(r.projects, project)
		return
	}
	r.projects[project] = repoProject{branch: branch, files: files}
}

// Calls counts the requests served.
func (r *Repository) Calls() int64 { return r.calls.Load() }

func (r *Repository) serve(w http.ResponseWriter, req *http.Request) {
	r.calls.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if req.Header.Get("PRIVATE-TOKEN") != r.token {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"message":"401 Unauthorized"}`))
		return
	}
	notFound := func(what string) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"404 ` + what + ` Not Found"}`))
	}
	rest, ok := strings.CutPrefix(req.URL.EscapedPath(), "/api/v4/projects/")
	idText, rest, _ := strings.Cut(rest, "/")
	id, err := strconv.ParseInt(idText, 10, 64)
	r.mu.Lock()
	p, known := r.projects[id]
	r.mu.Unlock()
	if !ok || err != nil || !known {
		notFound("Project")
		return
	}
	ref := req.URL.Query().Get("ref")
	switch {
	case rest == "":
		json.NewEncoder(w).Encode(map[string]any{"id": id, "default_branch": p.branch})
	case rest == "repository/tree" && ref == p.branch:
		folder := strings.TrimSuffix(req.URL.Query().Get("path"), "/")
		entries := []map[string]string{}
		for path := range p.files {
			if dir, name, _ := cutLast(path); dir == folder {
				entries = append(entries, map[string]string{"name": name, "type": "blob", "path": path})
			}
		}
		if len(entries) == 0 {
			notFound("Tree")
			return
		}
		json.NewEncoder(w).Encode(entries)
	case strings.HasPrefix(rest, "repository/files/") && strings.HasSuffix(rest, "/raw") && ref == p.branch:
		path, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(rest, "repository/files/"), "/raw"))
		data, has := p.files[path]
		if err != nil || !has {
			notFound("File")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(data))
	default:
		notFound("")
	}
}

// cutLast splits a path at its last '/'.
func cutLast(path string) (dir, name string, ok bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", path, false
	}
	return path[:i], path[i+1:], true
}

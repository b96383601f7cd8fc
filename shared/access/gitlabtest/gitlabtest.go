// Package gitlabtest is a stand-in for the one GitLab REST API call the
// gitlab access mode makes, GET /api/v4/projects/:id, for tests and
// benchmarks. It answers the way GitLab does: 401 for a token it does not
// know, 404 for a project the token's user cannot see, and the project with
// the user's permissions otherwise.
package gitlabtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// GitLab's access levels.
const (
	Guest      = 10
	Reporter   = 20
	Developer  = 30
	Maintainer = 40
)

// Kind is how a token is sent: the header GitLab reads it from.
type Kind string

// The kinds of token.
const (
	// PrivateToken is a personal, project or group access token in the
	// PRIVATE-TOKEN header.
	PrivateToken Kind = "PRIVATE-TOKEN"
	// OAuth is an OAuth token in "Authorization: Bearer".
	OAuth Kind = "Bearer"
)

// Grant is a user's access to a project: through project membership,
// through group membership, or both (0: none).
type Grant struct {
	Project, Group int
}

// Server is the stand-in GitLab.
type Server struct {
	*httptest.Server

	calls atomic.Int64
	mu    sync.Mutex
	// users maps kind+" "+token to the user's projects.
	users map[string]map[int64]Grant
	// visible lists the projects that exist and may be seen by anyone
	// signed in (public or internal); the others are private.
	visible map[int64]bool
	revoked map[string]bool
	noScope map[string]bool
	status  int
	delay   time.Duration
	body    string
	held    chan struct{} // while not nil, requests wait for it to close
}

// New starts a stand-in GitLab with no users; Close stops it.
func New() *Server {
	s := &Server{
		users:   map[string]map[int64]Grant{},
		visible: map[int64]bool{},
		revoked: map[string]bool{},
		noScope: map[string]bool{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Standard projects and tokens of NewStandard.
const (
	// Project is a private project every standard role is a member of.
	Project int64 = 1
	// OtherProject is a second such project.
	OtherProject int64 = 2
	// PublicProject is visible to every signed-in user; only the standard
	// roles' members have access levels in it.
	PublicProject int64 = 3
	// HiddenProject exists, is private, and has no standard member: GitLab
	// answers 404 for it, as for a project that does not exist.
	HiddenProject int64 = 4
)

// Role is one of the standard users: an access level through the project
// or through its group.
type Role struct {
	// Name is e.g. "reporter-via-group".
	Name  string
	Level int
	// ViaGroup tells the level comes from group membership.
	ViaGroup bool
}

// Roles are the standard users, one per level and membership path.
func Roles() []Role {
	var out []Role
	for _, l := range []struct {
		name  string
		level int
	}{{"guest", Guest}, {"reporter", Reporter}, {"developer", Developer}, {"maintainer", Maintainer}} {
		out = append(out, Role{l.name + "-via-project", l.level, false}, Role{l.name + "-via-group", l.level, true})
	}
	return out
}

// Token returns the standard token of role sent as kind.
func Token(kind Kind, role string) string {
	if kind == OAuth {
		return "oauth-" + role
	}
	return "glpat-" + role
}

// Header returns the header carrying token as kind.
func Header(kind Kind, token string) http.Header {
	h := http.Header{}
	if kind == OAuth {
		h.Set("Authorization", "Bearer "+token)
	} else {
		h.Set("PRIVATE-TOKEN", token)
	}
	return h
}

// NewStandard starts a stand-in GitLab with the standard users: each Role
// as a personal access token and as an OAuth token, members of Project,
// OtherProject and PublicProject; a user with no membership ("outsider");
// a revoked token ("revoked", 401) and one without the API scope
// ("no-scope", 403).
func NewStandard() *Server {
	s := New()
	s.SetVisible(PublicProject)
	for _, kind := range []Kind{PrivateToken, OAuth} {
		for _, r := range Roles() {
			g := Grant{Project: r.Level}
			if r.ViaGroup {
				g = Grant{Group: r.Level}
			}
			for _, p := range []int64{Project, OtherProject, PublicProject} {
				s.Grant(kind, Token(kind, r.Name), p, g)
			}
		}
		s.AddUser(kind, Token(kind, "outsider"))
		s.Revoke(kind, Token(kind, "revoked"))
		s.WithoutScope(kind, Token(kind, "no-scope"))
	}
	return s
}

// AddUser makes token a valid token of kind with no memberships.
func (s *Server) AddUser(kind Kind, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[string(kind)+" "+token] == nil {
		s.users[string(kind)+" "+token] = map[int64]Grant{}
	}
}

// Grant gives token's user access g to project.
func (s *Server) Grant(kind Kind, token string, project int64, g Grant) {
	s.AddUser(kind, token)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[string(kind)+" "+token][project] = g
}

// Revoke makes token answer 401, as a revoked or expired token does.
func (s *Server) Revoke(kind Kind, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, string(kind)+" "+token)
	s.revoked[string(kind)+" "+token] = true
}

// WithoutScope makes token answer 403, as a token without the read_api
// scope does.
func (s *Server) WithoutScope(kind Kind, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noScope[string(kind)+" "+token] = true
}

// SetVisible makes project visible to every signed-in user.
func (s *Server) SetVisible(project int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.visible[project] = true
}

// Fail makes every answer wait delay, then, when status is not 0, be
// status with body instead of GitLab's usual answer. Fail(0, 0, "")
// restores the usual answers.
func (s *Server) Fail(status int, delay time.Duration, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.delay, s.body = status, delay, body
}

// Hold makes every request wait, as on a stalled GitLab, until release is
// called or the request ends. Tests use it to know a call is in flight
// (Calls counts it on arrival) without guessing how long it takes.
func (s *Server) Hold() (release func()) {
	held := make(chan struct{})
	s.mu.Lock()
	s.held = held
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.held = nil
			s.mu.Unlock()
			close(held)
		})
	}
}

// Calls returns how many requests the stand-in has received.
func (s *Server) Calls() int64 { return s.calls.Load() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	s.mu.Lock()
	status, delay, body, held := s.status, s.delay, s.body, s.held
	s.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
		return
	}
	idText, ok := strings.CutPrefix(r.URL.Path, "/api/v4/projects/")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"404 Not Found"}`)
		return
	}
	key := ""
	if tok := r.Header.Get("PRIVATE-TOKEN"); tok != "" {
		key = string(PrivateToken) + " " + tok
	} else if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		key = string(OAuth) + " " + tok
	}
	s.mu.Lock()
	projects, known := s.users[key]
	grant, member := projects[id]
	visible := s.visible[id]
	noScope := s.noScope[key]
	s.mu.Unlock()
	switch {
	case noScope:
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api read_api"}`)
		return
	case !known:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"401 Unauthorized"}`)
		return
	case !member && !visible:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"404 Project Not Found"}`)
		return
	}
	json.NewEncoder(w).Encode(project(id, grant))
}

// project is GitLab's answer for a project, trimmed to a few fields beside
// the permissions, which hold null for a missing membership.
func project(id int64, g Grant) map[string]any {
	level := func(l int) any {
		if l == 0 {
			return nil
		}
		return map[string]int{"access_level": l, "notification_level": 3}
	}
	return map[string]any{
		"id":                  id,
		"name":                "project-" + strconv.FormatInt(id, 10),
		"path_with_namespace": "group/project-" + strconv.FormatInt(id, 10),
		"visibility":          "private",
		"permissions":         map[string]any{"project_access": level(g.Project), "group_access": level(g.Group)},
	}
}

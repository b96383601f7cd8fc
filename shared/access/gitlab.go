package access

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReporterAccess is GitLab's access level of the Reporter role, the least
// that may read a project's product analytics.
const ReporterAccess = 20

// The defaults of GitLabOptions, which a zero value takes.
const (
	DefaultGitLabTimeout = 3 * time.Second
	DefaultAllowTTL      = 60 * time.Second
	DefaultDenyTTL       = 10 * time.Second
	DefaultCacheSize     = 10000
)

// GitLabOptions configure a GitLab checker. Zero values take the defaults.
type GitLabOptions struct {
	// URL is the GitLab instance's base address, e.g. https://gitlab.com.
	URL string
	// Timeout bounds one call to GitLab.
	Timeout time.Duration
	// AllowTTL is how long a granted access is remembered, DenyTTL a
	// refused one: a revoked membership takes effect within AllowTTL, a new
	// one within DenyTTL.
	AllowTTL, DenyTTL time.Duration
	// CacheSize bounds the number of remembered decisions; the least
	// recently used one makes room.
	CacheSize int
	// Client calls GitLab (default: a keep-alive client of our own that
	// follows no redirects).
	Client *http.Client
	// Now is the clock of the cache (default time.Now).
	Now func() time.Time
	// CacheLookup, when set, is told of each lookup of the decision cache
	// and whether it held the decision, for the metrics.
	CacheLookup func(hit bool)
}

// GitLab checks callers' GitLab tokens against the GitLab REST API: the
// caller may read a project's analytics when GitLab shows them the project
// with Reporter access or above, through the project or its group.
type GitLab struct {
	projectsURL string
	opts        GitLabOptions
	cache       *decisionCache
	flights     flights
}

// NewGitLab returns a GitLab checker. It builds its HTTP client once, so
// that connections to GitLab are kept alive across requests.
func NewGitLab(opts GitLabOptions) (*GitLab, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("the GitLab URL %q is not an http(s) URL", opts.URL)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultGitLabTimeout
	}
	if opts.AllowTTL <= 0 {
		opts.AllowTTL = DefaultAllowTTL
	}
	if opts.DenyTTL <= 0 {
		opts.DenyTTL = DefaultDenyTTL
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheLookup == nil {
		opts.CacheLookup = func(bool) {}
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect would carry PRIVATE-TOKEN, which net/http does
			// not strip, to wherever it points; GitLab's API does not
			// redirect project lookups by id, so one is a fault (503).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &GitLab{
		projectsURL: strings.TrimRight(opts.URL, "/") + "/api/v4/projects/",
		opts:        opts,
		cache:       newDecisionCache(opts.CacheSize),
		flights:     flights{calls: map[cacheKey]*flight{}},
	}, nil
}

// credential is a caller's GitLab token and the header it came in.
type credential struct {
	header, value string // the header to send GitLab, and its value
	token         string
}

// gitlabCredential returns the caller's GitLab token: a personal, project or
// group access token in PRIVATE-TOKEN, or an OAuth token as a bearer token.
// PRIVATE-TOKEN wins when both are sent, as it does in GitLab.
func gitlabCredential(h http.Header) (credential, bool) {
	if tok := strings.TrimSpace(h.Get("PRIVATE-TOKEN")); tok != "" {
		return credential{header: "PRIVATE-TOKEN", value: tok, token: tok}, saneToken(tok)
	}
	if tok, ok := BearerToken(h); ok {
		return credential{header: "Authorization", value: "Bearer " + tok, token: tok}, saneToken(tok)
	}
	return credential{}, false
}

// saneToken refuses what no GitLab token looks like before it goes into a
// request header: a control character would make the call fail (503) where
// the right answer is 401, and a huge value costs GitLab for nothing.
func saneToken(tok string) bool {
	if len(tok) > 4096 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return false
		}
	}
	return true
}

// cacheKey identifies one decision: a hash of the token and the header it
// came in, never the token itself, and the project.
type cacheKey struct {
	token   [sha256.Size]byte
	project int64
}

func keyFor(c credential, projectID int64) cacheKey {
	// The header name is hashed too, so that the same string sent as a
	// personal token and as an OAuth token are two callers.
	h := sha256.New()
	io.WriteString(h, c.header)
	h.Write([]byte{0})
	io.WriteString(h, c.token)
	k := cacheKey{project: projectID}
	h.Sum(k.token[:0])
	return k
}

// CheckProject implements Checker.
func (g *GitLab) CheckProject(ctx context.Context, h http.Header, projectID int64) error {
	cred, ok := gitlabCredential(h)
	if !ok {
		return ErrUnauthenticated
	}
	key := keyFor(cred, projectID)
	d, ok := g.cache.get(key, g.opts.Now())
	g.opts.CacheLookup(ok)
	if ok {
		return d.err
	}
	return g.flights.do(ctx, key, func() error {
		// Another caller's flight may have settled it meanwhile.
		if d, ok := g.cache.get(key, g.opts.Now()); ok {
			return d.err
		}
		decision := g.ask(ctx, cred, projectID)
		switch {
		case decision == nil:
			g.cache.put(key, nil, g.opts.Now().Add(g.opts.AllowTTL))
		case errors.Is(decision, ErrUnavailable):
			// Failures are not remembered: the next request asks again.
		default:
			g.cache.put(key, decision, g.opts.Now().Add(g.opts.DenyTTL))
		}
		return decision
	})
}

// gitlabProject is the part of GitLab's project answer that matters here.
// Either access may be null: a caller can be a member of the project, of
// its group, of both, or of neither (a public project).
type gitlabProject struct {
	ID          int64 `json:"id"`
	Permissions *struct {
		ProjectAccess *struct {
			AccessLevel int `json:"access_level"`
		} `json:"project_access"`
		GroupAccess *struct {
			AccessLevel int `json:"access_level"`
		} `json:"group_access"`
	} `json:"permissions"`
}

// ask asks GitLab for the project as the caller, and returns the decision:
// nil, ErrUnauthenticated, ErrProjectNotFound or ErrAccessDenied, or an
// error wrapping ErrUnavailable when GitLab could not say.
func (g *GitLab) ask(ctx context.Context, cred credential, projectID int64) error {
	// The flight may serve other callers than the one whose request
	// started it: it must not end when that one goes away, only at its
	// own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.projectsURL+strconv.FormatInt(projectID, 10), nil)
	if err != nil {
		return fmt.Errorf("%w: building the GitLab request: %w", ErrUnavailable, err)
	}
	req.Header.Set(cred.header, cred.value)
	req.Header.Set("Accept", "application/json")
	resp, err := g.opts.Client.Do(req)
	if err != nil {
		// The error names the URL, never the header: no token in it.
		return fmt.Errorf("%w: asking GitLab for project %d: %w", ErrUnavailable, projectID, err)
	}
	defer func() {
		// Drained, the connection goes back to the pool.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: GitLab does not accept the token", ErrUnauthenticated)
	case http.StatusForbidden:
		// The token is valid but may not use the API (missing read_api
		// scope, blocked user): not signed in, as far as we can tell.
		return fmt.Errorf("%w: GitLab refuses the token (403)", ErrUnauthenticated)
	case http.StatusNotFound:
		return ErrProjectNotFound
	default:
		return fmt.Errorf("%w: GitLab answered %d for project %d", ErrUnavailable, resp.StatusCode, projectID)
	}
	var p gitlabProject
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&p); err != nil {
		return fmt.Errorf("%w: reading GitLab's answer for project %d: %w", ErrUnavailable, projectID, err)
	}
	if p.ID != projectID {
		return fmt.Errorf("%w: GitLab answered project %d for project %d", ErrUnavailable, p.ID, projectID)
	}
	level := 0
	if p.Permissions != nil {
		if pa := p.Permissions.ProjectAccess; pa != nil {
			level = max(level, pa.AccessLevel)
		}
		if ga := p.Permissions.GroupAccess; ga != nil {
			level = max(level, ga.AccessLevel)
		}
	}
	if level < ReporterAccess {
		return fmt.Errorf("%w: access level %d is below Reporter", ErrAccessDenied, level)
	}
	return nil
}

// flights coalesces concurrent identical cache misses into one GitLab call.
type flights struct {
	mu    sync.Mutex
	calls map[cacheKey]*flight
}

type flight struct {
	done     chan struct{}
	decision error
}

// do runs fn once for all concurrent callers with the same key. A caller
// whose context ends stops waiting (503) without stopping the flight.
func (f *flights) do(ctx context.Context, key cacheKey, fn func() error) error {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.decision
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for GitLab: %w", ErrUnavailable, ctx.Err())
		}
	}
	c := &flight{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	c.decision = fn()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.decision
}

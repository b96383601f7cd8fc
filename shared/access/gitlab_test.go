package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/wait"
	"productanalytics/shared/access/gitlabtest"
)

// clock is a settable clock for the cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newGitLab(t testing.TB, url string, opts GitLabOptions) *GitLab {
	t.Helper()
	opts.URL = url
	if opts.Timeout == 0 {
		// Far above a loopback call, however loaded the machine; the tests
		// of a slow GitLab stall it and set their own.
		opts.Timeout = 10 * time.Second
	}
	g, err := NewGitLab(opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func wantDecision(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("CheckProject = %v; want access", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("CheckProject = %v; want %v", err, want)
	}
}

// TestGitLabRoles covers every standard role, sent as a personal access
// token and as an OAuth token, through project and through group access.
func TestGitLabRoles(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	for _, kind := range []gitlabtest.Kind{gitlabtest.PrivateToken, gitlabtest.OAuth} {
		for _, role := range gitlabtest.Roles() {
			var want error
			if role.Level < ReporterAccess {
				want = ErrAccessDenied
			}
			t.Run(fmt.Sprintf("%s/%s", kind, role.Name), func(t *testing.T) {
				g := newGitLab(t, gl.URL, GitLabOptions{})
				tok := gitlabtest.Token(kind, role.Name)
				wantDecision(t, g.CheckProject(context.Background(), gitlabtest.Header(kind, tok), gitlabtest.Project), want)
				// The hidden project is 404 whatever the role.
				wantDecision(t, g.CheckProject(context.Background(), gitlabtest.Header(kind, tok), gitlabtest.HiddenProject), ErrProjectNotFound)
			})
		}
	}
}

func TestGitLabAnswers(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	redirect := httptest.NewServer(http.RedirectHandler(gl.URL+"/api/v4/projects/1", http.StatusFound))
	defer redirect.Close()

	pat := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, role))
	}
	oauth := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.OAuth, gitlabtest.Token(gitlabtest.OAuth, role))
	}
	var release func()
	stall := func() { release = gl.Hold() }
	reporter := pat("reporter-via-project")
	tests := []struct {
		name    string
		url     string
		header  http.Header
		project int64
		fail    func()
		want    error
		calls   int64 // GitLab calls made
	}{
		{"reporter", "", reporter, 1, nil, nil, 1},
		{"oauth developer via group", "", oauth("developer-via-group"), 2, nil, nil, 1},
		{"lower-case bearer", "", http.Header{"Authorization": {"bearer " + gitlabtest.Token(gitlabtest.OAuth, "maintainer-via-project")}}, 1, nil, nil, 1},
		{"PRIVATE-TOKEN wins over bearer", "", http.Header{"Private-Token": {gitlabtest.Token(gitlabtest.PrivateToken, "reporter-via-group")}, "Authorization": {"Bearer nonsense"}}, 1, nil, nil, 1},
		{"guest", "", pat("guest-via-project"), 1, nil, ErrAccessDenied, 1},
		{"outsider on a public project", "", pat("outsider"), gitlabtest.PublicProject, nil, ErrAccessDenied, 1},
		{"outsider on a private project", "", pat("outsider"), 1, nil, ErrProjectNotFound, 1},
		{"hidden project", "", reporter, gitlabtest.HiddenProject, nil, ErrProjectNotFound, 1},
		{"project that does not exist", "", reporter, 999, nil, ErrProjectNotFound, 1},
		{"revoked token", "", pat("revoked"), 1, nil, ErrUnauthenticated, 1},
		{"revoked oauth token", "", oauth("revoked"), 1, nil, ErrUnauthenticated, 1},
		{"token without the API scope (403)", "", pat("no-scope"), 1, nil, ErrUnauthenticated, 1},
		{"a PAT sent as OAuth token", "", gitlabtest.Header(gitlabtest.OAuth, gitlabtest.Token(gitlabtest.PrivateToken, "reporter-via-project")), 1, nil, ErrUnauthenticated, 1},
		{"no credentials", "", http.Header{}, 1, nil, ErrUnauthenticated, 0},
		{"basic auth", "", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, 1, nil, ErrUnauthenticated, 0},
		{"empty PRIVATE-TOKEN", "", http.Header{"Private-Token": {" "}}, 1, nil, ErrUnauthenticated, 0},
		{"token with a control character", "", http.Header{"Private-Token": {"glpat-\x01x"}}, 1, nil, ErrUnauthenticated, 0},
		{"token with a space", "", http.Header{"Authorization": {"Bearer two words"}}, 1, nil, ErrUnauthenticated, 0},

		{"GitLab down", down.URL, reporter, 1, nil, ErrUnavailable, 0},
		{"GitLab slow", "", reporter, 1, stall, ErrUnavailable, 1},
		{"GitLab 500", "", reporter, 1, func() { gl.Fail(500, 0, `{"message":"500 Internal Server Error"}`) }, ErrUnavailable, 1},
		{"GitLab 502 from its proxy", "", reporter, 1, func() { gl.Fail(502, 0, `<html>bad gateway</html>`) }, ErrUnavailable, 1},
		{"GitLab rate limit (429)", "", reporter, 1, func() { gl.Fail(429, 0, `Retry later`) }, ErrUnavailable, 1},
		{"malformed JSON", "", reporter, 1, func() { gl.Fail(200, 0, `{"id":1,"permissions":`) }, ErrUnavailable, 1},
		{"HTML instead of JSON", "", reporter, 1, func() { gl.Fail(200, 0, `<html>sign in</html>`) }, ErrUnavailable, 1},
		{"another project's answer", "", reporter, 1, func() {
			gl.Fail(200, 0, `{"id":2,"permissions":{"project_access":{"access_level":50},"group_access":null}}`)
		}, ErrUnavailable, 1},
		{"no permissions in the answer", "", reporter, 1, func() { gl.Fail(200, 0, `{"id":1}`) }, ErrAccessDenied, 1},
		{"redirect", redirect.URL, reporter, 1, nil, ErrUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer gl.Fail(0, 0, "")
			var opts GitLabOptions
			release = nil
			if tt.fail != nil {
				tt.fail()
			}
			if release != nil {
				// A stalled GitLab never answers: the timeout decides.
				defer release()
				opts.Timeout = 200 * time.Millisecond
			}
			url := gl.URL
			if tt.url != "" {
				url = tt.url
			}
			g := newGitLab(t, url, opts)
			before := gl.Calls()
			err := g.CheckProject(context.Background(), tt.header, tt.project)
			wantDecision(t, err, tt.want)
			if got := gl.Calls() - before; got != tt.calls {
				t.Errorf("GitLab was called %d times; want %d", got, tt.calls)
			}
			if errors.Is(err, ErrUnavailable) && g.cache.len() != 0 {
				t.Error("a failure was cached")
			}
		})
	}
}

func TestGitLabCache(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	pat := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, role))
	}
	type step struct {
		header  http.Header
		project int64
		advance time.Duration // before the request
		want    error
		calls   int64 // GitLab calls so far
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"allow is remembered for its period", []step{
			{pat("reporter-via-project"), 1, 0, nil, 1},
			{pat("reporter-via-project"), 1, 59 * time.Second, nil, 1},
			{pat("reporter-via-project"), 1, time.Second, nil, 2},
		}},
		{"deny expires after its period", []step{
			{pat("guest-via-project"), 1, 0, ErrAccessDenied, 1},
			{pat("guest-via-project"), 1, 9 * time.Second, ErrAccessDenied, 1},
			{pat("guest-via-project"), 1, time.Second, ErrAccessDenied, 2},
		}},
		{"not found is a deny", []step{
			{pat("reporter-via-project"), gitlabtest.HiddenProject, 0, ErrProjectNotFound, 1},
			{pat("reporter-via-project"), gitlabtest.HiddenProject, 5 * time.Second, ErrProjectNotFound, 1},
			{pat("reporter-via-project"), gitlabtest.HiddenProject, 5 * time.Second, ErrProjectNotFound, 2},
		}},
		{"a revoked token is a deny", []step{
			{pat("revoked"), 1, 0, ErrUnauthenticated, 1},
			{pat("revoked"), 1, 0, ErrUnauthenticated, 1},
			{pat("revoked"), 1, 10 * time.Second, ErrUnauthenticated, 2},
		}},
		{"distinct tokens never share an entry", []step{
			{pat("reporter-via-project"), 1, 0, nil, 1},
			{pat("guest-via-project"), 1, 0, ErrAccessDenied, 2},
			{pat("outsider"), 1, 0, ErrProjectNotFound, 3},
			// The same string as an OAuth token is another caller.
			{gitlabtest.Header(gitlabtest.OAuth, gitlabtest.Token(gitlabtest.PrivateToken, "reporter-via-project")), 1, 0, ErrUnauthenticated, 4},
			{pat("reporter-via-project"), 1, 0, nil, 4},
		}},
		{"projects are distinct entries", []step{
			{pat("reporter-via-project"), 1, 0, nil, 1},
			{pat("reporter-via-project"), 2, 0, nil, 2},
			{pat("reporter-via-project"), gitlabtest.HiddenProject, 0, ErrProjectNotFound, 3},
			{pat("reporter-via-project"), 1, 0, nil, 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			g := newGitLab(t, gl.URL, GitLabOptions{Now: clk.Now})
			start := gl.Calls()
			for i, s := range tt.steps {
				clk.advance(s.advance)
				err := g.CheckProject(context.Background(), s.header, s.project)
				if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
					t.Fatalf("step %d: CheckProject = %v; want %v", i, err, s.want)
				}
				if got := gl.Calls() - start; got != s.calls {
					t.Fatalf("step %d: %d GitLab calls; want %d", i, got, s.calls)
				}
			}
		})
	}
}

func TestGitLabFailuresAreNotCached(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	g := newGitLab(t, gl.URL, GitLabOptions{})
	h := gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, "reporter-via-project"))
	gl.Fail(500, 0, "")
	wantDecision(t, g.CheckProject(context.Background(), h, 1), ErrUnavailable)
	wantDecision(t, g.CheckProject(context.Background(), h, 1), ErrUnavailable)
	gl.Fail(0, 0, "")
	wantDecision(t, g.CheckProject(context.Background(), h, 1), nil)
	if gl.Calls() != 3 {
		t.Fatalf("%d GitLab calls; want 3 (failures asked again)", gl.Calls())
	}
}

// TestGitLabCacheLookupsAreReported checks what the metrics hear of the
// decision cache: a hit for each remembered decision, granted or refused,
// and a miss for each question put to GitLab or to a failed GitLab.
func TestGitLabCacheLookupsAreReported(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	var mu sync.Mutex
	var lookups []bool
	g := newGitLab(t, gl.URL, GitLabOptions{CacheLookup: func(hit bool) {
		mu.Lock()
		defer mu.Unlock()
		lookups = append(lookups, hit)
	}})
	reporter := gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, "reporter-via-project"))
	steps := []struct {
		name    string
		project int64
		fail    int
		want    error
		hit     bool
	}{
		{"first ask", 1, 0, nil, false},
		{"granted, remembered", 1, 0, nil, true},
		{"hidden project", gitlabtest.HiddenProject, 0, ErrProjectNotFound, false},
		{"refusal, remembered", gitlabtest.HiddenProject, 0, ErrProjectNotFound, true},
		{"GitLab failing", 2, 500, ErrUnavailable, false},
		{"a failure is not remembered", 2, 500, ErrUnavailable, false},
	}
	for i, s := range steps {
		gl.Fail(s.fail, 0, "")
		wantDecision(t, g.CheckProject(context.Background(), reporter, s.project), s.want)
		mu.Lock()
		got := lookups
		mu.Unlock()
		if len(got) != i+1 || got[i] != s.hit {
			t.Fatalf("%s: got lookups %v, want lookup %d a hit: %v", s.name, got, i, s.hit)
		}
	}
}

// TestGitLabCacheKeys inspects the cache: its keys are hashes of the
// header and token, and no entry holds the token.
func TestGitLabCacheKeys(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	g := newGitLab(t, gl.URL, GitLabOptions{})
	var tokens []string
	for _, kind := range []gitlabtest.Kind{gitlabtest.PrivateToken, gitlabtest.OAuth} {
		for _, r := range gitlabtest.Roles() {
			tok := gitlabtest.Token(kind, r.Name)
			tokens = append(tokens, tok)
			g.CheckProject(context.Background(), gitlabtest.Header(kind, tok), 1)
		}
	}
	keys := g.cache.keys()
	if len(keys) != len(tokens) {
		t.Fatalf("%d cache entries for %d tokens", len(keys), len(tokens))
	}
	var dump bytes.Buffer
	for _, k := range keys {
		el := g.cache.entries[k]
		fmt.Fprintf(&dump, "%+v %+v %s\n", k, el.Value, k.token)
	}
	for _, tok := range tokens {
		if bytes.Contains(dump.Bytes(), []byte(tok)) {
			t.Fatalf("the cache holds the token %q", tok)
		}
	}
	header := "PRIVATE-TOKEN"
	want := sha256.Sum256([]byte(header + "\x00" + tokens[0]))
	if _, ok := g.cache.entries[cacheKey{token: want, project: 1}]; !ok {
		t.Fatal("no entry under the hash of the first token")
	}
}

func TestGitLabCacheIsBounded(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	g := newGitLab(t, gl.URL, GitLabOptions{CacheSize: 3})
	h := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, role))
	}
	roles := gitlabtest.Roles()
	for _, r := range roles {
		g.CheckProject(context.Background(), h(r.Name), 1)
		// The first stays the most recently used.
		g.CheckProject(context.Background(), h(roles[0].Name), 1)
	}
	if n := g.cache.len(); n != 3 {
		t.Fatalf("the cache holds %d entries; its size is 3", n)
	}
	calls := gl.Calls()
	g.CheckProject(context.Background(), h(roles[0].Name), 1)
	g.CheckProject(context.Background(), h(roles[len(roles)-1].Name), 1)
	if gl.Calls() != calls {
		t.Fatal("a recently used entry was evicted")
	}
	g.CheckProject(context.Background(), h(roles[1].Name), 1)
	if gl.Calls() != calls+1 {
		t.Fatal("the least recently used entry was not evicted")
	}
}

func TestGitLabCoalescesConcurrentMisses(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	gl.Fail(0, 100*time.Millisecond, "") // slow enough for the callers to meet
	g := newGitLab(t, gl.URL, GitLabOptions{})
	h := gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, "developer-via-group"))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- g.CheckProject(context.Background(), h, 1) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantDecision(t, err, nil)
	}
	if gl.Calls() != 1 {
		t.Fatalf("%d GitLab calls for 20 identical concurrent requests; want 1", gl.Calls())
	}
}

// TestGitLabCallerGivesUp: a caller whose request ends stops waiting with
// 503, and the others still get the decision.
func TestGitLabCallerGivesUp(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	release := gl.Hold()
	defer release()
	g := newGitLab(t, gl.URL, GitLabOptions{})
	h := gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, "reporter-via-project"))
	leader := make(chan error, 1)
	go func() { leader <- g.CheckProject(context.Background(), h, 1) }()
	wait.Until(t, "the first caller's GitLab call", func() bool { return gl.Calls() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	wantDecision(t, g.CheckProject(ctx, h, 1), ErrUnavailable)
	release()
	wantDecision(t, <-leader, nil)
	if n := gl.Calls(); n != 1 {
		t.Fatalf("%d GitLab calls; the second caller should have joined the first's", n)
	}
}

func TestNewGitLabRefusesABadURL(t *testing.T) {
	for _, u := range []string{"", "gitlab.com", "ftp://gitlab.com", "https://"} {
		if _, err := NewGitLab(GitLabOptions{URL: u}); err == nil {
			t.Errorf("NewGitLab(%q) accepted it", u)
		}
	}
}

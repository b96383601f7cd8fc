package access_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/logcheck"
	"productanalytics/shared/access"
	"productanalytics/shared/access/gitlabtest"
	"productanalytics/shared/api"
	"productanalytics/shared/cube"
)

// countingCube stands in for the Cube client and counts the calls, so that
// a test can tell that Cube is reached only when access is granted.
type countingCube struct {
	calls    atomic.Int64
	projects sync.Map // project IDs asked for
}

func (c *countingCube) Do(_ context.Context, req cube.Request) (*cube.Response, error) {
	c.calls.Add(1)
	c.projects.Store(req.ProjectID, true)
	return &cube.Response{Body: []byte(`{"results":[{"data":[{"TrackedEvents.count":"83"}]}]}`)}, nil
}

// TestGitLabModeAnswers runs each case through the API handler: the answer
// the caller gets, and whether Cube was called.
func TestGitLabModeAnswers(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	pat := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, role))
	}
	oauth := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.OAuth, gitlabtest.Token(gitlabtest.OAuth, role))
	}
	const denied, notFound, unauthorized = `{"message":"Access Denied","error":"Access Denied"}`, `{"message":"404 Project Not Found","error":"404 Project Not Found"}`, `{"message":"401 Unauthorized","error":"401 Unauthorized"}`
	unavailable := `{"message":"503 Service Unavailable: caller access cannot be checked","error":"503 Service Unavailable: caller access cannot be checked"}`
	type tc struct {
		name    string
		header  http.Header
		project string
		gitlab  string // "down", "slow", "500" or ""
		status  int
		body    string // "" for Cube's answer
	}
	tests := []tc{
		{"hidden project", pat("maintainer-via-project"), "4", "", 404, notFound},
		{"project that does not exist", oauth("maintainer-via-group"), "999", "", 404, notFound},
		{"outsider on a private project", pat("outsider"), "1", "", 404, notFound},
		{"outsider on a public project", pat("outsider"), "3", "", 401, denied},
		{"revoked token", pat("revoked"), "1", "", 401, unauthorized},
		{"revoked oauth token", oauth("revoked"), "1", "", 401, unauthorized},
		{"token without the API scope", pat("no-scope"), "1", "", 401, unauthorized},
		{"no token", http.Header{}, "1", "", 401, unauthorized},
		{"GitLab down", pat("reporter-via-project"), "1", "down", 503, unavailable},
		{"GitLab slow", pat("reporter-via-project"), "1", "slow", 503, unavailable},
		{"GitLab 500", pat("reporter-via-project"), "1", "500", 503, unavailable},
	}
	for _, r := range gitlabtest.Roles() {
		for _, kind := range []gitlabtest.Kind{gitlabtest.PrivateToken, gitlabtest.OAuth} {
			c := tc{name: string(kind) + " " + r.Name, header: gitlabtest.Header(kind, gitlabtest.Token(kind, r.Name)), project: "1", status: 200}
			if r.Level < gitlabtest.Reporter {
				c.status, c.body = 401, denied
			}
			tests = append(tests, c)
		}
	}
	logs := &logcheck.Buffer{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer gl.Fail(0, 0, "")
			url := gl.URL
			// Far above a loopback call, however loaded the machine.
			timeout := 10 * time.Second
			switch tt.gitlab {
			case "down":
				url = down.URL
			case "slow":
				// Stalled until the test ends: the timeout decides.
				defer gl.Hold()()
				timeout = 200 * time.Millisecond
			case "500":
				gl.Fail(500, 0, `{"message":"500 Internal Server Error"}`)
			}
			checker, err := access.NewGitLab(access.GitLabOptions{URL: url, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			c := &countingCube{}
			h := api.NewHandler(checker, c, slog.New(slog.NewJSONHandler(logs, nil)), api.Options{})
			r := httptest.NewRequest("POST", "/api/v4/projects/"+tt.project+"/product_analytics/request/load",
				strings.NewReader(`{"query":{"measures":["TrackedEvents.count"]},"queryType":"multi"}`))
			for k, v := range tt.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d %s; want %d", w.Code, w.Body, tt.status)
			}
			if tt.body != "" && w.Body.String() != tt.body {
				t.Fatalf("body %s; want %s", w.Body, tt.body)
			}
			wantCalls := int64(0)
			if tt.status == 200 {
				wantCalls = 1
				if _, ok := c.projects.Load(int64(1)); !ok {
					t.Fatal("Cube was not asked for project 1")
				}
			}
			if got := c.calls.Load(); got != wantCalls {
				t.Fatalf("Cube was called %d times; want %d", got, wantCalls)
			}
		})
	}
	// No token reached the logs, whatever the answer.
	out := logs.String()
	for _, kind := range []gitlabtest.Kind{gitlabtest.PrivateToken, gitlabtest.OAuth} {
		for _, r := range append(gitlabtest.Roles(), gitlabtest.Role{Name: "revoked"}, gitlabtest.Role{Name: "outsider"}) {
			if tok := gitlabtest.Token(kind, r.Name); strings.Contains(out, tok) {
				t.Fatalf("the token %s appears in the logs", tok)
			}
		}
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &line); err != nil || line["status"] == nil {
		t.Fatalf("no request log line: %q", out)
	}
}

// TestJWKSModeAnswers runs the JWKS mode through the API handler: a good
// token reaches Cube, a forged one is 401, and a JWKS that cannot be
// fetched is 503 with Cube untouched.
func TestJWKSModeAnswers(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgRS256}})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(set) }))
	defer up.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	claims := jwt.MapClaims{"iss": "https://gitlab.example.com", "aud": "analytics", "project_id": "1", "exp": time.Now().Add(time.Hour).Unix()}
	sign := func(m jwt.SigningMethod, k any) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tests := []struct {
		name   string
		url    string
		token  string
		status int
	}{
		{"good token", up.URL, sign(jwt.SigningMethodRS256, key), 200},
		{"alg confusion", up.URL, sign(jwt.SigningMethodHS256, pemKey), 401},
		{"JWKS down", down.URL, sign(jwt.SigningMethodRS256, key), 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checker, err := access.NewJWKS(t.Context(), access.JWKSOptions{
				URL: tt.url, Issuer: "https://gitlab.example.com", Audience: "analytics", ProjectsClaim: "project_id", Timeout: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			c := &countingCube{}
			h := api.NewHandler(checker, c, slog.New(slog.DiscardHandler), api.Options{})
			r := httptest.NewRequest("GET", "/api/v4/projects/1/product_analytics/request/meta", nil)
			r.Header.Set("Authorization", "Bearer "+tt.token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d %s; want %d", w.Code, w.Body, tt.status)
			}
			if want := int64(map[bool]int{true: 1}[tt.status == 200]); c.calls.Load() != want {
				t.Fatalf("Cube was called %d times; want %d", c.calls.Load(), want)
			}
		})
	}
}

package access

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/wait"
)

const (
	testIssuer   = "https://gitlab.example.com"
	testAudience = "product-analytics"
)

// jwksServer serves a JWK Set that a test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	keys    map[string]crypto.PublicKey // by kid
	status  int
}

func newJWKSServer(t testing.TB, keys map[string]crypto.PublicKey) *jwksServer {
	s := &jwksServer{keys: map[string]crypto.PublicKey{}}
	for kid, k := range keys {
		s.keys[kid] = k
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != 0 {
			w.WriteHeader(s.status)
			return
		}
		var set jwkset.JWKSMarshal
		for kid, k := range s.keys {
			jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
			if err != nil {
				t.Error(err)
				return
			}
			set.Keys = append(set.Keys, jwk.Marshal())
		}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) add(kid string, k crypto.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[kid] = k
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = code
}

// signKID signs claims with key under the kid header (none when empty).
func signKID(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func oidcClaims() jwt.MapClaims {
	return jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "projects": []int{1, 7}, "iss": testIssuer, "aud": testAudience}
}

type testKeys struct {
	rsa, rsa2, other *rsa.PrivateKey
	ec, ec384        *ecdsa.PrivateKey
}

func genKeys(t testing.TB) testKeys {
	var k testKeys
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa, &k.rsa2, &k.other} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

func newJWKSChecker(t testing.TB, url string, opts JWKSOptions) *JWT {
	t.Helper()
	opts.URL = url
	if opts.Issuer == "" {
		opts.Issuer = testIssuer
	}
	if opts.Audience == "" {
		opts.Audience = testAudience
	}
	if opts.Timeout == 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // ends the refresh goroutine
	j, err := NewJWKS(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestJWKSCheckProject(t *testing.T) {
	k := genKeys(t)
	srv := newJWKSServer(t, map[string]crypto.PublicKey{"rsa-1": &k.rsa.PublicKey, "ec-1": &k.ec.PublicKey})
	checker := newJWKSChecker(t, srv.URL, JWKSOptions{})

	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	ecDER, _ := x509.MarshalPKIXPublicKey(&k.ec.PublicKey)
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	rs := func(c jwt.MapClaims) string { return signKID(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, c) }

	tests := []struct {
		name    string
		token   string
		project int64
		want    error
	}{
		{"RS256", rs(oidcClaims()), 1, nil},
		{"ES256", signKID(t, jwt.SigningMethodES256, "ec-1", k.ec, oidcClaims()), 7, nil},
		{"RS256 without kid", signKID(t, jwt.SigningMethodRS256, "", k.rsa, oidcClaims()), 1, nil},
		{"ES256 without kid", signKID(t, jwt.SigningMethodES256, "", k.ec, oidcClaims()), 1, nil},
		{"audience list", rs(with(oidcClaims(), "aud", []string{"other", testAudience})), 1, nil},
		{"project not in claim", rs(oidcClaims()), 2, ErrProjectNotFound},

		{"alg confusion: HS256 keyed with the RSA public key PEM", signKID(t, jwt.SigningMethodHS256, "rsa-1", pemKey, oidcClaims()), 1, ErrUnauthenticated},
		{"alg confusion: HS256 keyed with the RSA public key DER", signKID(t, jwt.SigningMethodHS256, "rsa-1", der, oidcClaims()), 1, ErrUnauthenticated},
		{"alg confusion: HS256 keyed with the PKCS#1 PEM", signKID(t, jwt.SigningMethodHS256, "rsa-1", pkcs1, oidcClaims()), 1, ErrUnauthenticated},
		{"alg confusion: HS256 keyed with the EC public key", signKID(t, jwt.SigningMethodHS256, "ec-1", ecDER, oidcClaims()), 1, ErrUnauthenticated},
		{"alg confusion, no kid", signKID(t, jwt.SigningMethodHS256, "", pemKey, oidcClaims()), 1, ErrUnauthenticated},
		{"ES256 naming the RSA key", signKID(t, jwt.SigningMethodES256, "rsa-1", k.ec, oidcClaims()), 1, ErrUnauthenticated},
		{"RS256 naming the EC key", signKID(t, jwt.SigningMethodRS256, "ec-1", k.rsa, oidcClaims()), 1, ErrUnauthenticated},
		{"alg none", unsignedNone(`{"exp":` + exp + `,"projects":[1],"iss":"` + testIssuer + `","aud":"` + testAudience + `"}`), 1, ErrUnauthenticated},
		{"alg none with a kid", unsignedNoneKID("rsa-1", `{"exp":`+exp+`,"projects":[1],"iss":"`+testIssuer+`","aud":"`+testAudience+`"}`), 1, ErrUnauthenticated},
		{"RS512 (not pinned)", signKID(t, jwt.SigningMethodRS512, "rsa-1", k.rsa, oidcClaims()), 1, ErrUnauthenticated},
		{"PS256 (not pinned)", signKID(t, jwt.SigningMethodPS256, "rsa-1", k.rsa, oidcClaims()), 1, ErrUnauthenticated},
		{"ES384 (not pinned)", signKID(t, jwt.SigningMethodES384, "ec-1", k.ec384, oidcClaims()), 1, ErrUnauthenticated},
		{"signed by another RSA key under a known kid", signKID(t, jwt.SigningMethodRS256, "rsa-1", k.other, oidcClaims()), 1, ErrUnauthenticated},
		{"expired", rs(with(oidcClaims(), "exp", time.Now().Add(-time.Hour).Unix())), 1, ErrUnauthenticated},
		{"no exp", rs(with(oidcClaims(), "exp", nil)), 1, ErrUnauthenticated},
		{"nbf in the future", rs(with(oidcClaims(), "nbf", time.Now().Add(time.Hour).Unix())), 1, ErrUnauthenticated},
		{"wrong iss", rs(with(oidcClaims(), "iss", "https://evil.example.com")), 1, ErrUnauthenticated},
		{"no iss", rs(with(oidcClaims(), "iss", nil)), 1, ErrUnauthenticated},
		{"wrong aud", rs(with(oidcClaims(), "aud", "another-service")), 1, ErrUnauthenticated},
		{"no aud", rs(with(oidcClaims(), "aud", nil)), 1, ErrUnauthenticated},
		{"no projects claim", rs(with(oidcClaims(), "projects", nil)), 1, ErrUnauthenticated},
		{"tampered payload", tamper("Bearer " + rs(oidcClaims()))[len("Bearer "):], 1, ErrUnauthenticated},
		{"garbage", "not.a.jwt", 1, ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checker.CheckProject(context.Background(), bearer(tt.token), tt.project)
			wantDecision(t, err, tt.want)
			if errors.Is(err, ErrUnavailable) {
				t.Fatal("a bad token was answered 503")
			}
		})
	}
	if err := checker.CheckProject(context.Background(), http.Header{}, 1); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("no token: %v", err)
	}
	// Known keys never cause a fetch: only the first one happened.
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches; want 1", n)
	}
}

// unsignedNoneKID is an alg "none" token naming a known key.
func unsignedNoneKID(kid, claims string) string {
	_, rest, _ := strings.Cut(unsignedNone(claims), ".")
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	return base64.RawURLEncoding.EncodeToString(h) + "." + rest
}

// TestJWKSRotation: a key that appears after start is picked up with one
// fetch; the old keys still verify; a key that never appears is refused
// after at most one fetch, and then no more fetches until the interval.
func TestJWKSRotation(t *testing.T) {
	k := genKeys(t)
	tests := []struct {
		name string
		// steps: kid to sign with ("" = the new rsa-2), want, JWKS fetches after
		steps []rotationStep
	}{
		{"new key, then an unknown one", []rotationStep{
			{"rsa-1", nil, 1},
			{"ec-1", nil, 1},
			{"rsa-2", nil, 2},
			{"rsa-1", nil, 2},
			{"ec-1", nil, 2},
			{"unknown", ErrUnauthenticated, 2}, // the refetch was just spent
		}},
		{"unknown key first", []rotationStep{
			{"unknown", ErrUnauthenticated, 2},
			{"unknown", ErrUnauthenticated, 2},
			{"another-unknown", ErrUnauthenticated, 2},
			{"rsa-1", nil, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, map[string]crypto.PublicKey{"rsa-1": &k.rsa.PublicKey, "ec-1": &k.ec.PublicKey})
			checker := newJWKSChecker(t, srv.URL, JWKSOptions{})
			srv.add("rsa-2", &k.rsa2.PublicKey) // the rotation: a third key
			for i, s := range tt.steps {
				var tok string
				switch s.kid {
				case "ec-1":
					tok = signKID(t, jwt.SigningMethodES256, s.kid, k.ec, oidcClaims())
				case "rsa-2":
					tok = signKID(t, jwt.SigningMethodRS256, s.kid, k.rsa2, oidcClaims())
				case "rsa-1":
					tok = signKID(t, jwt.SigningMethodRS256, s.kid, k.rsa, oidcClaims())
				default:
					tok = signKID(t, jwt.SigningMethodRS256, s.kid, k.other, oidcClaims())
				}
				err := checker.CheckProject(context.Background(), bearer(tok), 1)
				if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) || errors.Is(err, ErrUnavailable) {
					t.Fatalf("step %d (%s): %v; want %v", i, s.kid, err, s.want)
				}
				if n := srv.fetches.Load(); n != s.fetches {
					t.Fatalf("step %d (%s): %d JWKS fetches; want %d", i, s.kid, n, s.fetches)
				}
			}
		})
	}
}

type rotationStep struct {
	kid     string
	want    error
	fetches int64
}

// TestJWKSUnavailable: without a JWKS no token verifies, and the answer is
// 503, never access and never 401; once the JWKS answers, tokens verify.
func TestJWKSUnavailable(t *testing.T) {
	k := genKeys(t)
	good := func(t *testing.T) http.Header {
		return bearer(signKID(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, oidcClaims()))
	}
	t.Run("down at start", func(t *testing.T) {
		srv := newJWKSServer(t, nil)
		srv.Close()
		checker := newJWKSChecker(t, srv.URL, JWKSOptions{})
		for range 3 {
			wantDecision(t, checker.CheckProject(context.Background(), good(t), 1), ErrUnavailable)
		}
		// Without a token, the answer is still 401.
		wantDecision(t, checker.CheckProject(context.Background(), http.Header{}, 1), ErrUnauthenticated)
	})
	t.Run("500 at start, then healed", func(t *testing.T) {
		srv := newJWKSServer(t, map[string]crypto.PublicKey{"rsa-1": &k.rsa.PublicKey})
		srv.setStatus(500)
		checker := newJWKSChecker(t, srv.URL, JWKSOptions{UnknownKIDInterval: 50 * time.Millisecond})
		wantDecision(t, checker.CheckProject(context.Background(), good(t), 1), ErrUnavailable)
		srv.setStatus(0)
		// Once the refetch interval has passed, the next unknown kid fetches.
		wait.Until(t, "a token to verify once the JWKS answers", func() bool {
			return checker.CheckProject(context.Background(), good(t), 1) == nil
		})
	})
	t.Run("slow at start", func(t *testing.T) {
		// The JWKS never answers while the test runs: a NewJWKS that waited
		// for it would not return before the test's deadline.
		stalled := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stalled:
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		defer close(stalled)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // ends the refresh goroutine
		type result struct {
			checker *JWT
			err     error
		}
		built := make(chan result, 1)
		go func() {
			j, err := NewJWKS(ctx, JWKSOptions{URL: slow.URL, Issuer: testIssuer, Audience: testAudience, Timeout: 100 * time.Millisecond})
			built <- result{j, err}
		}()
		var checker *JWT
		select {
		case r := <-built:
			if r.err != nil {
				t.Fatal(r.err)
			}
			checker = r.checker
		case <-time.After(wait.Deadline):
			t.Fatalf("NewJWKS still waits for a stalled JWKS after %s", wait.Deadline)
		}
		wantDecision(t, checker.CheckProject(context.Background(), good(t), 1), ErrUnavailable)
	})
	t.Run("not a JWK Set", func(t *testing.T) {
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
		defer bad.Close()
		checker := newJWKSChecker(t, bad.URL, JWKSOptions{})
		wantDecision(t, checker.CheckProject(context.Background(), good(t), 1), ErrUnavailable)
	})
}

// TestJWKSBackgroundRefresh: a key removed from the JWKS stops verifying
// after the refresh interval.
func TestJWKSBackgroundRefresh(t *testing.T) {
	k := genKeys(t)
	srv := newJWKSServer(t, map[string]crypto.PublicKey{"rsa-1": &k.rsa.PublicKey, "ec-1": &k.ec.PublicKey})
	checker := newJWKSChecker(t, srv.URL, JWKSOptions{RefreshInterval: 30 * time.Millisecond})
	tok := bearer(signKID(t, jwt.SigningMethodRS256, "rsa-1", k.rsa, oidcClaims()))
	wantDecision(t, checker.CheckProject(context.Background(), tok, 1), nil)
	srv.mu.Lock()
	delete(srv.keys, "rsa-1")
	srv.mu.Unlock()
	wait.Until(t, "a removed key to stop verifying after a refresh", func() bool {
		return checker.CheckProject(context.Background(), tok, 1) != nil
	})
	wantDecision(t, checker.CheckProject(context.Background(), tok, 1), ErrUnauthenticated)
}

// TestGitLabCIIDToken: GitLab CI ID tokens name their project in
// project_id, as a string; one setting makes them work.
func TestGitLabCIIDToken(t *testing.T) {
	k := genKeys(t)
	srv := newJWKSServer(t, map[string]crypto.PublicKey{"gitlab-ci": &k.rsa.PublicKey})
	checker := newJWKSChecker(t, srv.URL, JWKSOptions{ProjectsClaim: "project_id"})
	now := time.Now()
	claims := jwt.MapClaims{
		"namespace_id": "72", "namespace_path": "group", "project_id": "42", "project_path": "group/project",
		"user_id": "1", "user_login": "someone", "pipeline_id": "1000", "job_id": "2000", "ref": "main", "ref_type": "branch",
		"jti": "b2c7e8a0", "iss": testIssuer, "aud": testAudience, "sub": "project_path:group/project:ref_type:branch:ref:main",
		"iat": now.Unix(), "nbf": now.Add(-5 * time.Second).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	tok := bearer(signKID(t, jwt.SigningMethodRS256, "gitlab-ci", k.rsa, claims))
	tests := []struct {
		project int64
		want    error
	}{{42, nil}, {72, ErrProjectNotFound}, {1, ErrProjectNotFound}}
	for _, tt := range tests {
		t.Run(fmt.Sprint("project ", tt.project), func(t *testing.T) {
			wantDecision(t, checker.CheckProject(context.Background(), tok, tt.project), tt.want)
		})
	}
}

func TestNewJWKSOptions(t *testing.T) {
	tests := []struct {
		name string
		opts JWKSOptions
	}{
		{"no URL", JWKSOptions{Issuer: testIssuer, Audience: testAudience}},
		{"not http", JWKSOptions{URL: "file:///etc/keys", Issuer: testIssuer, Audience: testAudience}},
		{"no issuer", JWKSOptions{URL: "https://gitlab.example.com/oauth/discovery/keys", Audience: testAudience}},
		{"no audience", JWKSOptions{URL: "https://gitlab.example.com/oauth/discovery/keys", Issuer: testIssuer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewJWKS(context.Background(), tt.opts); err == nil {
				t.Error("got no error, want a refusal")
			}
		})
	}
}

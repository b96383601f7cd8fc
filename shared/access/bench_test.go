package access

import (
	"context"
	"crypto"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/shared/access/gitlabtest"
)

// BenchmarkCheckProject is the latency each access mode adds to a request,
// side by side: the JWT modes verify a signature every time (their keys are
// cached: the HS256 key by the secrets cache, JWKS keys by keyfunc); the
// gitlab mode either finds its decision in its cache (hit) or asks the
// stand-in GitLab over loopback HTTP (miss). A JWKS miss is a token whose
// key is unknown, which costs a JWKS fetch.
func BenchmarkCheckProject(b *testing.B) {
	k := genKeys(b)
	srv := newJWKSServer(b, map[string]crypto.PublicKey{"rsa-1": &k.rsa.PublicKey, "ec-1": &k.ec.PublicKey})
	jwks := newJWKSChecker(b, srv.URL, JWKSOptions{})
	// A refetch allowed at every request, so that each one costs a fetch.
	jwksRefetch := newJWKSChecker(b, srv.URL, JWKSOptions{UnknownKIDInterval: time.Nanosecond})
	hs := NewJWT(JWTOptions{Key: staticKey, Issuer: testIssuer, Audience: testAudience})

	gl := gitlabtest.NewStandard()
	b.Cleanup(gl.Close)
	clk := newClock()
	gitlab := newGitLab(b, gl.URL, GitLabOptions{Now: clk.Now, Timeout: time.Second})
	reporter := gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, "reporter-via-project"))

	cases := []struct {
		name    string
		checker Checker
		header  http.Header
		want    bool
		each    func() // before each check
	}{
		{"jwt-hs256", hs, bearer(signKID(b, jwt.SigningMethodHS256, "", []byte(testKey), oidcClaims())), true, nil},
		{"jwks-rs256", jwks, bearer(signKID(b, jwt.SigningMethodRS256, "rsa-1", k.rsa, oidcClaims())), true, nil},
		{"jwks-es256", jwks, bearer(signKID(b, jwt.SigningMethodES256, "ec-1", k.ec, oidcClaims())), true, nil},
		{"jwks-unknown-kid-refetch", jwksRefetch, bearer(signKID(b, jwt.SigningMethodRS256, "unknown", k.other, oidcClaims())), false, nil},
		{"gitlab-hit", gitlab, reporter, true, nil},
		// The clock moves past the allow period before each check: every
		// check is a miss.
		{"gitlab-miss", gitlab, reporter, true, func() { clk.advance(61 * time.Second) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			if err := c.checker.CheckProject(ctx, c.header, 1); (err == nil) != c.want {
				b.Fatalf("CheckProject = %v", err)
			}
			calls := gl.Calls()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if c.each != nil {
					c.each()
				}
				if err := c.checker.CheckProject(ctx, c.header, 1); (err == nil) != c.want {
					b.Fatalf("CheckProject = %v", err)
				}
			}
			if c.name == "gitlab-hit" && gl.Calls() != calls {
				b.Fatal("a cache hit called GitLab")
			}
		})
	}
}

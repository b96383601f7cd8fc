package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testKey = "caller-token-key-for-tests-0123456789"

func staticKey(context.Context) (string, error) { return testKey, nil }

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func valid() jwt.MapClaims {
	return jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "projects": []int{1, 7}, "iss": "gitlab.example.com", "aud": "product-analytics"}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// unsignedNone builds an alg "none" token by hand, since the library refuses
// to sign one without its unsafe marker.
func unsignedNone(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc([]byte(claims)) + "."
}

func TestJWTCheckProject(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hs := func(c jwt.MapClaims) string { return "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testKey), c) }
	exp := time.Now().Add(time.Hour).Unix()

	tests := []struct {
		name    string
		header  string
		project int64
		want    error
	}{
		{"valid", hs(valid()), 1, nil},
		{"valid second project", hs(valid()), 7, nil},
		{"lower-case bearer", "bearer " + sign(t, jwt.SigningMethodHS256, []byte(testKey), valid()), 1, nil},
		{"string project ids", hs(with(valid(), "projects", []string{"1"})), 1, nil},
		{"single project id", hs(with(valid(), "projects", 1)), 1, nil},
		{"audience list", hs(with(valid(), "aud", []string{"other", "product-analytics"})), 1, nil},

		{"no header", "", 1, ErrUnauthenticated},
		{"not bearer", "Basic dXNlcjpwYXNz", 1, ErrUnauthenticated},
		{"bearer without token", "Bearer ", 1, ErrUnauthenticated},
		// As Cube takes it, and Cube's own client sends it.
		{"raw token without Bearer", sign(t, jwt.SigningMethodHS256, []byte(testKey), valid()), 1, nil},
		{"raw token of another project", sign(t, jwt.SigningMethodHS256, []byte(testKey), valid()), 2, ErrProjectNotFound},
		{"raw garbage", "not.a.jwt", 1, ErrUnauthenticated},
		{"another scheme with a token", "Token " + sign(t, jwt.SigningMethodHS256, []byte(testKey), valid()), 1, ErrUnauthenticated},
		{"garbage", "Bearer not.a.jwt", 1, ErrUnauthenticated},
		{"alg none", "Bearer " + unsignedNone(`{"exp":`+strconv.FormatInt(exp, 10)+`,"projects":[1],"iss":"gitlab.example.com","aud":"product-analytics"}`), 1, ErrUnauthenticated},
		{"HS512 with the right key", "Bearer " + sign(t, jwt.SigningMethodHS512, []byte(testKey), valid()), 1, ErrUnauthenticated},
		{"RS256", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, valid()), 1, ErrUnauthenticated},
		{"ES256", "Bearer " + sign(t, jwt.SigningMethodES256, ecKey, valid()), 1, ErrUnauthenticated},
		{"wrong signature", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-key"), valid()), 1, ErrUnauthenticated},
		{"expired", hs(with(valid(), "exp", time.Now().Add(-time.Hour).Unix())), 1, ErrUnauthenticated},
		{"no exp", hs(with(valid(), "exp", nil)), 1, ErrUnauthenticated},
		{"nbf in the future", hs(with(valid(), "nbf", time.Now().Add(time.Hour).Unix())), 1, ErrUnauthenticated},
		{"iat in the future", hs(with(valid(), "iat", time.Now().Add(time.Hour).Unix())), 1, ErrUnauthenticated},
		{"wrong iss", hs(with(valid(), "iss", "evil.example.com")), 1, ErrUnauthenticated},
		{"no iss", hs(with(valid(), "iss", nil)), 1, ErrUnauthenticated},
		{"wrong aud", hs(with(valid(), "aud", "something-else")), 1, ErrUnauthenticated},
		{"no aud", hs(with(valid(), "aud", nil)), 1, ErrUnauthenticated},
		{"claim missing", hs(with(valid(), "projects", nil)), 1, ErrUnauthenticated},
		{"claim an object", hs(with(valid(), "projects", map[string]int{"id": 1})), 1, ErrUnauthenticated},
		{"claim with a fraction", hs(with(valid(), "projects", []float64{1.5})), 1, ErrUnauthenticated},
		{"project not in claim", hs(valid()), 2, ErrProjectNotFound},
		{"empty claim", hs(with(valid(), "projects", []int{})), 1, ErrProjectNotFound},
		{"tampered payload", tamper(hs(valid())), 1, ErrUnauthenticated},
		// Only the canonical form of an ID, as in the path: any other
		// spelling is a claim not made for this API.
		{"claim id with a leading zero", hs(with(valid(), "projects", []string{"02"})), 2, ErrUnauthenticated},
		{"claim id with a plus", hs(with(valid(), "projects", []string{"+2"})), 2, ErrUnauthenticated},
		{"claim id with a space", hs(with(valid(), "projects", []string{" 2"})), 2, ErrUnauthenticated},
		{"claim id with a trailing space", hs(with(valid(), "projects", []string{"2 "})), 2, ErrUnauthenticated},
		{"claim id as a decimal string", hs(with(valid(), "projects", []string{"2.0"})), 2, ErrUnauthenticated},
		{"claim id as a JSON decimal", hs(with(valid(), "projects", []json.RawMessage{json.RawMessage("2.0")})), 2, ErrUnauthenticated},
		{"claim id in exponent form", hs(with(valid(), "projects", []json.RawMessage{json.RawMessage("2e0")})), 2, ErrUnauthenticated},
		{"claim id negative", hs(with(valid(), "projects", []json.RawMessage{json.RawMessage("-2")})), 2, ErrUnauthenticated},
		{"claim id zero", hs(with(valid(), "projects", []string{"0"})), 0, ErrUnauthenticated},
		{"claim id past 63 bits", hs(with(valid(), "projects", []string{"9223372036854775809"})), 1, ErrUnauthenticated},
		{"claim id in hex", hs(with(valid(), "projects", []string{"0x2"})), 2, ErrUnauthenticated},
		{"claim id with underscores", hs(with(valid(), "projects", []string{"2_0"})), 20, ErrUnauthenticated},
		{"canonical string id beside a number", hs(with(valid(), "projects", []any{"2", 7})), 2, nil},
		{"large canonical id", hs(with(valid(), "projects", []json.RawMessage{json.RawMessage("9007199254740993")})), 9007199254740993, nil},
	}
	checker := NewJWT(JWTOptions{Key: staticKey, Issuer: "gitlab.example.com", Audience: "product-analytics"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			err := checker.CheckProject(context.Background(), h, tt.project)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckProject = %v; want access", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckProject = %v; want %v", err, tt.want)
			}
		})
	}
}

// tamper swaps the payload of a signed token for one naming more projects.
func tamper(header string) string {
	tok := header[len("Bearer "):]
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"exp":9999999999,"projects":[1,2,3],"iss":"gitlab.example.com","aud":"product-analytics"}`))
	return "Bearer " + parts[0] + "." + parts[1] + "." + parts[2]
}

func TestJWTWithoutIssuerOrAudienceConfigured(t *testing.T) {
	checker := NewJWT(JWTOptions{Key: staticKey})
	h := http.Header{"Authorization": {"Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testKey), with(with(valid(), "iss", nil), "aud", nil))}}
	if err := checker.CheckProject(context.Background(), h, 1); err != nil {
		t.Fatalf("CheckProject = %v", err)
	}
}

func TestJWTCustomClaim(t *testing.T) {
	checker := NewJWT(JWTOptions{Key: staticKey, ProjectsClaim: "project_id"})
	h := http.Header{"Authorization": {"Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testKey), with(valid(), "project_id", "42"))}}
	if err := checker.CheckProject(context.Background(), h, 42); err != nil {
		t.Fatalf("CheckProject(42) = %v", err)
	}
	if err := checker.CheckProject(context.Background(), h, 1); !errors.Is(err, ErrProjectNotFound) {
		t.Fatalf("CheckProject(1) = %v; want not found", err)
	}
}

func TestJWTKeyUnavailable(t *testing.T) {
	calls := 0
	checker := NewJWT(JWTOptions{Key: func(context.Context) (string, error) {
		calls++
		return "", errors.New("secrets manager is down")
	}})
	h := http.Header{"Authorization": {"Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testKey), valid())}}
	if err := checker.CheckProject(context.Background(), h, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CheckProject = %v; want unavailable", err)
	}
	// Without credentials the key is not even read.
	if err := checker.CheckProject(context.Background(), http.Header{}, 1); !errors.Is(err, ErrUnauthenticated) || calls != 1 {
		t.Fatalf("CheckProject without header = %v after %d key reads", err, calls)
	}
}

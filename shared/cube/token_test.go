package cube

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestAppID(t *testing.T) {
	for _, tc := range []struct {
		id   int64
		want string
	}{
		{1, "gitlab_project_1"},
		{12, "gitlab_project_12"},
		{1000000, "gitlab_project_1000000"},
		// Beyond float64 precision: a JSON-number round trip would change it.
		{9007199254740993, "gitlab_project_9007199254740993"},
	} {
		if got := AppID(tc.id); got != tc.want {
			t.Errorf("AppID(%d) = %q, want %q", tc.id, got, tc.want)
		}
	}
	// A shared appId would mean a shared database: each project needs its own.
	seen := map[string]int64{}
	for id := int64(1); id <= 2000; id++ {
		app := AppID(id)
		if other, ok := seen[app]; ok {
			t.Fatalf("projects %d and %d share appId %q", other, id, app)
		}
		seen[app] = id
	}
}

func TestMintToken(t *testing.T) {
	if TokenLifetime != 180*time.Second {
		t.Errorf("TokenLifetime = %v, want 180s as GitLab mints them", TokenLifetime)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 750_000_000, time.UTC)
	for _, tc := range []struct {
		name    string
		key     string
		project int64
		issuer  string
	}{
		{"project 12", "cube-secret", 12, "gitlab.example.com"},
		{"project 3, another key", "another secret with spaces", 3, "https://gitlab.example.com"},
		{"large id", "k", 9007199254740993, "gitlab.example.com"},
		{"no issuer configured", "cube-secret", 12, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := MintToken(tc.key, tc.project, tc.issuer, now)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("token %q is not a compact JWS", tok)
			}

			// The signature checked without golang-jwt, as Cube's
			// jsonwebtoken does: HMAC-SHA256 over header.payload.
			mac := hmac.New(sha256.New, []byte(tc.key))
			mac.Write([]byte(parts[0] + "." + parts[1]))
			if got, want := parts[2], base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != want {
				t.Errorf("signature %q, want %q", got, want)
			}
			var header map[string]any
			decodePart(t, parts[0], &header)
			if header["alg"] != "HS256" || header["typ"] != "JWT" || len(header) != 2 {
				t.Errorf("header %v, want alg HS256, typ JWT", header)
			}

			var payload map[string]json.RawMessage
			decodePart(t, parts[1], &payload)
			want := map[string]string{
				"iat":   fmt.Sprint(now.Unix()),
				"exp":   fmt.Sprint(now.Unix() + 180),
				"appId": fmt.Sprintf(`"gitlab_project_%d"`, tc.project),
			}
			if tc.issuer != "" {
				want["iss"] = `"` + tc.issuer + `"`
			}
			if len(payload) != len(want) {
				t.Errorf("claims %v, want exactly %v", keysOf(payload), keysOf(want))
			}
			for k, v := range want {
				if got := string(payload[k]); got != v {
					t.Errorf("claim %s = %s, want %s", k, got, v)
				}
			}

			parse := func(key string, at time.Time) error {
				opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(),
					jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return at })}
				if tc.issuer != "" {
					opts = append(opts, jwt.WithIssuer(tc.issuer))
				}
				_, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(key), nil }, opts...)
				return err
			}
			if err := parse(tc.key, now); err != nil {
				t.Errorf("does not verify with its key: %v", err)
			}
			if err := parse(tc.key+"x", now); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
				t.Errorf("with another key: %v, want an invalid signature", err)
			}
			// iat is truncated to the second, so the token lives 180 s from
			// the start of the second it was minted in.
			if err := parse(tc.key, now.Add(179*time.Second)); err != nil {
				t.Errorf("rejected within its lifetime: %v", err)
			}
			if err := parse(tc.key, now.Add(181*time.Second)); !errors.Is(err, jwt.ErrTokenExpired) {
				t.Errorf("after its lifetime: %v, want expired", err)
			}
		})
	}
}

func TestMintTokenScopesOneProject(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, err := MintToken("k", 3, "i", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MintToken("k", 4, "i", now)
	if err != nil {
		t.Fatal(err)
	}
	appID := func(tok string) any {
		claims := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte("k"), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
			t.Fatal(err)
		}
		return claims["appId"]
	}
	if appID(a) != "gitlab_project_3" || appID(b) != "gitlab_project_4" {
		t.Errorf("appIds %v and %v, want gitlab_project_3 and gitlab_project_4", appID(a), appID(b))
	}
}

func decodePart(t *testing.T, part string, v any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("part %q is not base64url without padding: %v", part, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("part %s is not JSON: %v", raw, err)
	}
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestTokensAreReused(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	var tk tokens
	get := func(key string, project int64, at time.Duration) string {
		t.Helper()
		v, err := tk.get(key, project, "iss", base.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := get("k1", 1, 0)
	tests := []struct {
		name      string
		key       string
		project   int64
		at        time.Duration
		wantFirst bool
	}{
		{"same project, a second later", "k1", 1, time.Second, true},
		{"same project, as long as it keeps enough validity", "k1", 1, TokenLifetime - TokenMinValidity, true},
		{"another project", "k1", 2, time.Second, false},
		{"another key (a rotation)", "k2", 1, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(tt.key, tt.project, tt.at); (got == first) != tt.wantFirst {
				t.Errorf("got the first token %v, want %v", got == first, tt.wantFirst)
			}
		})
	}
	// Past the reuse window a new token comes, valid long enough for a
	// caller of include_token.
	later := TokenLifetime - TokenMinValidity + time.Second
	tok := get("k1", 1, later)
	if tok == first {
		t.Fatal("a token with less than TokenMinValidity left was reused")
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.NewParser(jwt.WithoutClaimsValidation()).ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte("k1"), nil }); err != nil {
		t.Fatal(err)
	}
	exp, _ := claims.GetExpirationTime()
	if left := exp.Sub(base.Add(later)); left < TokenMinValidity {
		t.Fatalf("the new token has %s left, want at least %s", left, TokenMinValidity)
	}
}

func TestTokensStayBounded(t *testing.T) {
	var tk tokens
	now := time.Unix(1_700_000_000, 0)
	for p := range int64(maxTokens + 10) {
		if _, err := tk.get("k", p+1, "iss", now); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tk.all); n > maxTokens {
		t.Fatalf("%d tokens kept, want at most %d", n, maxTokens)
	}
}

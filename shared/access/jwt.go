package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/shared/request"
)

// DefaultProjectsClaim is the claim listing the readable projects unless
// told otherwise.
const DefaultProjectsClaim = "projects"

// JWTOptions configure a JWT checker.
type JWTOptions struct {
	// Key returns the HS256 key caller tokens are signed with.
	Key func(ctx context.Context) (string, error)
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// ProjectsClaim names the claim listing the readable project IDs
	// (default DefaultProjectsClaim). It may hold a list or a single ID, as numbers
	// or strings.
	ProjectsClaim string
	// Leeway allows for clock skew on exp, nbf and iat (default 30s).
	Leeway time.Duration
}

// JWT checks bearer tokens: signed with a shared HS256 key (NewJWT), or with
// the RS256/ES256 keys of an OIDC issuer's JWKS (NewJWKS). Both share the
// claim checks and the projects claim; only where the key comes from differs.
type JWT struct {
	parser        *jwt.Parser
	projectsClaim string
	// key returns the key that verifies t. An error wrapping ErrUnavailable
	// means the key source failed (503), anything else that the token is
	// not acceptable (401).
	key func(ctx context.Context, t *jwt.Token) (any, error)
}

// NewJWT returns a checker of HS256 caller tokens.
func NewJWT(opts JWTOptions) *JWT {
	keyOf := func(ctx context.Context, _ *jwt.Token) (any, error) {
		key, err := opts.Key(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: reading the caller-token key: %w", ErrUnavailable, err)
		}
		return []byte(key), nil
	}
	return newJWT(claimOptions{opts.Issuer, opts.Audience, opts.ProjectsClaim, opts.Leeway},
		[]string{jwt.SigningMethodHS256.Alg()}, keyOf)
}

// claimOptions are the checks every JWT checker makes beside the signature.
type claimOptions struct {
	issuer, audience, projectsClaim string
	leeway                          time.Duration
}

func newJWT(c claimOptions, algs []string, key func(context.Context, *jwt.Token) (any, error)) *JWT {
	if c.projectsClaim == "" {
		c.projectsClaim = DefaultProjectsClaim
	}
	if c.leeway == 0 {
		c.leeway = 30 * time.Second
	}
	popts := []jwt.ParserOption{
		// Pinning the algorithms is what refuses "none" and alg confusion
		// before any key is looked up.
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.leeway),
		jwt.WithJSONNumber(),
	}
	if c.issuer != "" {
		popts = append(popts, jwt.WithIssuer(c.issuer))
	}
	if c.audience != "" {
		popts = append(popts, jwt.WithAudience(c.audience))
	}
	return &JWT{parser: jwt.NewParser(popts...), projectsClaim: c.projectsClaim, key: key}
}

// CheckProject implements Checker.
func (j *JWT) CheckProject(ctx context.Context, h http.Header, projectID int64) error {
	raw, ok := jwtToken(h)
	if !ok {
		return ErrUnauthenticated
	}
	claims := jwt.MapClaims{}
	_, err := j.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) { return j.key(ctx, t) })
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			// The key source failed: the token may well be good, so the
			// answer is 503, and never access.
			return fmt.Errorf("verifying the caller token: %w", err)
		}
		return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return ProjectsClaim(claims, j.projectsClaim, projectID)
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(v[7:])
	return tok, tok != ""
}

// jwtToken returns the caller's JWT: from "Authorization: Bearer <jwt>",
// or, as Cube takes it and Cube's own client sends it, from a bare
// "Authorization: <jwt>".
func jwtToken(h http.Header) (string, bool) {
	if tok, ok := BearerToken(h); ok {
		return tok, true
	}
	v := strings.TrimSpace(h.Get("Authorization"))
	// A value with a space names another scheme (Basic, Token): refused.
	return v, v != "" && !strings.ContainsAny(v, " \t")
}

// ProjectsClaim checks that the claim named name lists projectID. A missing
// or malformed claim means the token was not made for this API (401); a
// well-formed claim without the project means the project is not visible (404).
func ProjectsClaim(claims jwt.MapClaims, name string, projectID int64) error {
	v, ok := claims[name]
	if !ok {
		return fmt.Errorf("%w: the token has no %q claim", ErrUnauthenticated, name)
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	for _, item := range list {
		id, ok := claimID(item)
		if !ok {
			return fmt.Errorf("%w: the %q claim holds something other than project IDs", ErrUnauthenticated, name)
		}
		if id == projectID {
			return nil
		}
	}
	return ErrProjectNotFound
}

// claimID reads one project ID of the claim, by the rule the path's ID
// follows (request.ProjectID): only the canonical form of a positive
// integer, so that "02", "+2", " 2" or 2.0 never stand for project 2.
func claimID(v any) (int64, bool) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = t
	case float64:
		// Claims decoded without json.Number (never by this package's
		// parser): an integer well within float64's exact range.
		if t < 1 || t > 1<<53 || t != float64(int64(t)) {
			return 0, false
		}
		return int64(t), true
	default:
		return 0, false
	}
	id, err := request.ProjectID(s)
	return id, err == nil
}

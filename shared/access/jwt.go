package access

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTOptions configure a JWT checker.
type JWTOptions struct {
	// Key returns the HS256 key caller tokens are signed with.
	Key func(ctx context.Context) (string, error)
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// ProjectsClaim names the claim listing the readable project IDs
	// (default "projects"). It may hold a list or a single ID, as numbers
	// or strings.
	ProjectsClaim string
	// Leeway allows for clock skew on exp, nbf and iat (default 30s).
	Leeway time.Duration
}

// JWT checks bearer tokens signed with a shared HS256 key.
type JWT struct {
	opts   JWTOptions
	parser *jwt.Parser
}

// NewJWT returns a checker of HS256 caller tokens.
func NewJWT(opts JWTOptions) *JWT {
	if opts.ProjectsClaim == "" {
		opts.ProjectsClaim = "projects"
	}
	if opts.Leeway == 0 {
		opts.Leeway = 30 * time.Second
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithJSONNumber(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	return &JWT{opts: opts, parser: jwt.NewParser(popts...)}
}

// CheckProject implements Checker.
func (j *JWT) CheckProject(ctx context.Context, h http.Header, projectID int64) error {
	raw, ok := BearerToken(h)
	if !ok {
		return ErrUnauthenticated
	}
	key, err := j.opts.Key(ctx)
	if err != nil {
		return fmt.Errorf("%w: reading the caller-token key: %w", ErrUnavailable, err)
	}
	claims := jwt.MapClaims{}
	_, err = j.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return []byte(key), nil })
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return ProjectsClaim(claims, j.opts.ProjectsClaim, projectID)
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

func claimID(v any) (int64, bool) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = t
	case float64:
		if t != float64(int64(t)) {
			return 0, false
		}
		return int64(t), true
	default:
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

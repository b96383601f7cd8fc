package stack

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/web"
	"productanalytics/shared/config"
)

// PageTokenTTL is how long the caller token the dashboards page gets from
// the local stack stays valid; the page asks for a fresh one before each
// drawing.
const PageTokenTTL = time.Hour

// local answers the dashboards page's local.json: the projects with demo
// data and, when the API checks callers with the stack's own key, a token
// that reads them.
func (s *Stack) local(cfg config.Config) func(context.Context) (web.Local, error) {
	ownKey := cfg.AuthMode == config.AuthJWT && cfg.JWKSURL == ""
	return func(context.Context) (web.Local, error) {
		projects, err := eventsdb.Projects(s.dataDir)
		if err != nil {
			return web.Local{}, err
		}
		l := web.Local{Projects: projects}
		if ownKey {
			l.Expires = time.Now().Add(PageTokenTTL).UTC().Truncate(time.Second)
			l.Token = pageToken(cfg, l.Expires, projects)
		}
		return l, nil
	}
}

// pageToken is a caller token that reads projects until expires, with the
// claims the API's configuration asks for (issuer, audience, the projects
// claim's name), signed with the stack's key.
func pageToken(cfg config.Config, expires time.Time, projects []int64) string {
	claims := jwt.MapClaims{
		"sub":                "local-dashboards-page",
		cfg.JWTProjectsClaim: projects,
		"iat":                time.Now().Unix(),
		"exp":                expires.Unix(),
	}
	if cfg.JWTIssuer != "" {
		claims["iss"] = cfg.JWTIssuer
	}
	if cfg.JWTAudience != "" {
		claims["aud"] = cfg.JWTAudience
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(LocalCallerKey))
	if err != nil {
		panic(err) // HS256 signing with a []byte key cannot fail
	}
	return tok
}

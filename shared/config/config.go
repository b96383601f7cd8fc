// Package config reads the functions' configuration from environment
// variables and validates it once, at cold start.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"productanalytics/shared/access"
	"productanalytics/shared/cube"
	"productanalytics/shared/deploy"
	"productanalytics/shared/emf"
	"productanalytics/shared/metrics"
	"productanalytics/shared/secrets"
)

// Auth modes.
const (
	// AuthJWT verifies caller JWTs: signed with a shared HS256 key, or with
	// an OIDC issuer's RS256/ES256 keys when AUTH_JWKS_URL is set.
	AuthJWT = "jwt"
	// AuthGitLab checks callers' GitLab tokens against the GitLab API.
	AuthGitLab = "gitlab"
)

// Config is everything the API needs to run.
type Config struct {
	// Deployments are the Cube deployments projects are spread over
	// (CUBE_DEPLOYMENTS, see deploy.Parse); without it, CUBE_API_URL and
	// CUBE_API_KEY_SECRET_ID make one, named DefaultDeployment.
	Deployments []deploy.Deployment
	// Placements put chosen projects on a named deployment
	// (CUBE_PLACEMENTS, see deploy.ParsePlacements); the others go where
	// rendezvous hashing ranks them.
	Placements map[int64]string
	// CubeTokenIssuer is the iss claim of Cube tokens (CUBE_TOKEN_ISSUER).
	CubeTokenIssuer string
	// CubeRequestTimeout bounds one exchange with Cube (CUBE_REQUEST_TIMEOUT).
	CubeRequestTimeout time.Duration
	// CubeWaitDeadline bounds Continue-wait polling (CUBE_WAIT_DEADLINE).
	CubeWaitDeadline time.Duration

	// SecretCacheTTL is how long secrets are cached (SECRET_CACHE_TTL).
	SecretCacheTTL time.Duration
	// SecretStaleFor is how long past the TTL the last good secret is
	// served while Secrets Manager fails (SECRET_STALE_FOR).
	SecretStaleFor time.Duration

	// AuthMode is how callers are checked (AUTH_MODE).
	AuthMode string
	// JWTSecretID names the secret holding the HS256 key of caller tokens
	// (AUTH_JWT_SECRET_ID); set in jwt mode unless JWKSURL is.
	JWTSecretID string
	// JWKSURL, when set, is the JWKS of the issuer whose RS256/ES256 keys
	// sign caller tokens (AUTH_JWKS_URL), instead of an HS256 secret.
	JWKSURL string
	// JWTIssuer, when set, is required as the tokens' iss (AUTH_JWT_ISSUER);
	// it must be set with JWKSURL.
	JWTIssuer string
	// JWTAudience, when set, is required among the tokens' aud
	// (AUTH_JWT_AUDIENCE); it must be set with JWKSURL.
	JWTAudience string
	// JWTProjectsClaim names the claim listing readable projects
	// (AUTH_JWT_PROJECTS_CLAIM).
	JWTProjectsClaim string

	// GitLabURL is the GitLab instance callers' tokens are checked against
	// in gitlab mode (GITLAB_URL), e.g. https://gitlab.com.
	GitLabURL string
	// GitLabTimeout bounds one call to GitLab (GITLAB_TIMEOUT).
	GitLabTimeout time.Duration
	// GitLabAllowTTL is how long a granted access is remembered
	// (GITLAB_ALLOW_TTL), GitLabDenyTTL a refused one (GITLAB_DENY_TTL).
	GitLabAllowTTL, GitLabDenyTTL time.Duration
	// GitLabCacheSize bounds the remembered decisions (GITLAB_CACHE_SIZE).
	GitLabCacheSize int

	// MaxInFlightPerProject is the most requests of one project the API
	// serves at once in one process (MAX_IN_FLIGHT_PER_PROJECT); past it,
	// 429 with Retry-After.
	MaxInFlightPerProject int

	// LogLevel is the least level logged (LOG_LEVEL: debug, info, warn, error).
	LogLevel slog.Level
	// MetricsNamespace is the CloudWatch namespace of the metrics the log
	// lines carry (METRICS_NAMESPACE).
	MetricsNamespace string
}

// CubeVariables lists the variables LoadCube reads: those of every function
// that calls Cube.
func CubeVariables() []string {
	return []string{
		"CUBE_DEPLOYMENTS", "CUBE_PLACEMENTS", "CUBE_API_URL", "CUBE_API_KEY_SECRET_ID", "CUBE_TOKEN_ISSUER", "CUBE_REQUEST_TIMEOUT", "CUBE_WAIT_DEADLINE",
		"SECRET_CACHE_TTL", "SECRET_STALE_FOR", "LOG_LEVEL", "METRICS_NAMESPACE",
	}
}

// AuthVariables lists the variables of caller access, which Load reads
// beside CubeVariables.
func AuthVariables() []string {
	return []string{
		"AUTH_MODE", "AUTH_JWT_SECRET_ID", "AUTH_JWKS_URL", "AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE", "AUTH_JWT_PROJECTS_CLAIM",
		"GITLAB_URL", "GITLAB_TIMEOUT", "GITLAB_ALLOW_TTL", "GITLAB_DENY_TTL", "GITLAB_CACHE_SIZE",
	}
}

// ServeVariables lists the variables of how callers are served, which Load
// reads beside CubeVariables and AuthVariables.
func ServeVariables() []string {
	return []string{"MAX_IN_FLIGHT_PER_PROJECT"}
}

// Variables lists every environment variable Load reads.
func Variables() []string {
	return slices.Concat(CubeVariables(), AuthVariables(), ServeVariables())
}

// DefaultMaxInFlightPerProject is MAX_IN_FLIGHT_PER_PROJECT unless set:
// above the 14 queries the dashboards page (and GitLab's, one per panel)
// sends at once when it opens, so that opening a dashboard is never
// refused, and far below what one Cube serves at once.
const DefaultMaxInFlightPerProject = 16

// Load reads the API's configuration through getenv (os.Getenv in
// production) and reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := r.cube()
	r.auth(&c)
	c.MaxInFlightPerProject = r.integer("MAX_IN_FLIGHT_PER_PROJECT", DefaultMaxInFlightPerProject, 1, 10000)
	return c, errors.Join(r.errs...)
}

// LoadCube reads the configuration of a function that calls Cube but serves
// no callers (the warm-up): CubeVariables only.
func LoadCube(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := r.cube()
	return c, errors.Join(r.errs...)
}

func (r *reader) cube() Config {
	c := Config{
		CubeTokenIssuer:    r.optional("CUBE_TOKEN_ISSUER", "product-analytics-api"),
		CubeRequestTimeout: r.duration("CUBE_REQUEST_TIMEOUT", cube.DefaultRequestTimeout, time.Second, 28*time.Second),
		CubeWaitDeadline:   r.duration("CUBE_WAIT_DEADLINE", cube.DefaultWaitDeadline, time.Second, 15*time.Minute),
		SecretCacheTTL:     r.duration("SECRET_CACHE_TTL", secrets.DefaultTTL, time.Second, 24*time.Hour),
		SecretStaleFor:     r.duration("SECRET_STALE_FOR", secrets.DefaultStaleFor, time.Second, 24*time.Hour),
		LogLevel:           r.level("LOG_LEVEL"),
		MetricsNamespace:   r.namespace("METRICS_NAMESPACE"),
	}
	if c.CubeRequestTimeout > c.CubeWaitDeadline {
		r.fail("CUBE_REQUEST_TIMEOUT", errors.New("must not exceed CUBE_WAIT_DEADLINE"))
	}
	r.deployments(&c)
	return c
}

// DefaultDeployment names the one deployment CUBE_API_URL and
// CUBE_API_KEY_SECRET_ID describe.
const DefaultDeployment = "default"

// deployments reads the Cube deployments and the placements, and checks
// that every placement names a listed deployment.
func (r *reader) deployments(c *Config) {
	spec := strings.TrimSpace(r.getenv("CUBE_DEPLOYMENTS"))
	single := strings.TrimSpace(r.getenv("CUBE_API_URL")) != "" || strings.TrimSpace(r.getenv("CUBE_API_KEY_SECRET_ID")) != ""
	switch {
	case spec != "" && single:
		// Either could be the one meant: refuse rather than guess.
		r.fail("CUBE_DEPLOYMENTS", errors.New("and CUBE_API_URL/CUBE_API_KEY_SECRET_ID are exclusive: list every deployment in CUBE_DEPLOYMENTS, or set only the two for one"))
	case spec != "":
		deps, err := deploy.Parse(spec)
		if err != nil {
			r.fail("CUBE_DEPLOYMENTS", err)
		}
		c.Deployments = deps
	default:
		u, id := r.url("CUBE_API_URL"), r.required("CUBE_API_KEY_SECRET_ID")
		if u != "" && id != "" {
			c.Deployments = []deploy.Deployment{{Name: DefaultDeployment, URL: u, KeySecretID: id}}
		}
	}
	placements, err := deploy.ParsePlacements(r.getenv("CUBE_PLACEMENTS"))
	if err != nil {
		r.fail("CUBE_PLACEMENTS", err)
	}
	c.Placements = placements
	if len(c.Deployments) == 0 {
		return
	}
	if err == nil {
		if _, err := deploy.NewRouter(c.Deployments, c.Placements); err != nil {
			r.fail("CUBE_PLACEMENTS", err)
		}
	}
}

// Router places projects on the deployments.
func (c Config) Router() (*deploy.Router, error) {
	return deploy.NewRouter(c.Deployments, c.Placements)
}

func (r *reader) auth(c *Config) {
	// Every variable is read and checked whatever the mode, so that a typo
	// in a setting of the other mode is still reported.
	c.AuthMode = r.optional("AUTH_MODE", AuthJWT)
	c.JWTSecretID = r.optional("AUTH_JWT_SECRET_ID", "")
	c.JWKSURL = r.optionalURL("AUTH_JWKS_URL")
	c.JWTIssuer = r.optional("AUTH_JWT_ISSUER", "")
	c.JWTAudience = r.optional("AUTH_JWT_AUDIENCE", "")
	c.JWTProjectsClaim = r.optional("AUTH_JWT_PROJECTS_CLAIM", access.DefaultProjectsClaim)
	c.GitLabURL = r.optionalURL("GITLAB_URL")
	c.GitLabTimeout = r.duration("GITLAB_TIMEOUT", access.DefaultGitLabTimeout, 100*time.Millisecond, 10*time.Second)
	c.GitLabAllowTTL = r.duration("GITLAB_ALLOW_TTL", access.DefaultAllowTTL, time.Second, time.Hour)
	c.GitLabDenyTTL = r.duration("GITLAB_DENY_TTL", access.DefaultDenyTTL, time.Second, time.Hour)
	c.GitLabCacheSize = r.integer("GITLAB_CACHE_SIZE", access.DefaultCacheSize, 1, 1000000)
	switch c.AuthMode {
	case AuthJWT:
		switch {
		case c.JWKSURL != "" && c.JWTSecretID != "":
			// Both would leave it unclear which tokens are trusted.
			r.fail("AUTH_JWKS_URL", errors.New("and AUTH_JWT_SECRET_ID are exclusive: set one (RS256/ES256 from a JWKS, or an HS256 secret)"))
		case c.JWKSURL != "":
			// Without both, any token the issuer signs, for any
			// audience, would read analytics.
			if c.JWTIssuer == "" {
				r.fail("AUTH_JWT_ISSUER", errors.New("is required with AUTH_JWKS_URL"))
			}
			if c.JWTAudience == "" {
				r.fail("AUTH_JWT_AUDIENCE", errors.New("is required with AUTH_JWKS_URL"))
			}
		case c.JWTSecretID == "" && strings.TrimSpace(r.getenv("AUTH_JWKS_URL")) == "":
			r.fail("AUTH_JWT_SECRET_ID", errors.New("is required in jwt mode unless AUTH_JWKS_URL is set"))
		}
	case AuthGitLab:
		if c.GitLabURL == "" && strings.TrimSpace(r.getenv("GITLAB_URL")) == "" {
			r.fail("GITLAB_URL", errors.New("is required when AUTH_MODE is gitlab"))
		}
	default:
		r.fail("AUTH_MODE", fmt.Errorf("%q is not a supported mode (jwt, gitlab)", c.AuthMode))
	}
}

type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) fail(name string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s: %w", name, err))
}

func (r *reader) optional(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) required(name string) string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		r.fail(name, errors.New("is required"))
	}
	return v
}

func (r *reader) url(name string) string {
	v := r.required(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, fmt.Errorf("%q is not an http(s) URL", v))
		return ""
	}
	return strings.TrimRight(v, "/")
}

// optionalURL reads an http(s) URL that may be left unset.
func (r *reader) optionalURL(name string) string {
	if strings.TrimSpace(r.getenv(name)) == "" {
		return ""
	}
	return r.url(name)
}

func (r *reader) integer(name string, def, lo, hi int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(name, fmt.Errorf("%q is not a whole number", v))
		return def
	}
	if n < lo || n > hi {
		r.fail(name, fmt.Errorf("%d is outside %d to %d", n, lo, hi))
		return def
	}
	return n
}

func (r *reader) duration(name string, def, lo, hi time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, fmt.Errorf("%q is not a duration such as 25s or 5m", v))
		return def
	}
	if d < lo || d > hi {
		r.fail(name, fmt.Errorf("%s is outside %s to %s", d, lo, hi))
		return def
	}
	return d
}

func (r *reader) namespace(name string) string {
	v := r.optional(name, metrics.DefaultNamespace)
	if err := emf.CheckNamespace(v); err != nil {
		r.fail(name, fmt.Errorf("%q is not a CloudWatch namespace (letters, digits and ._-/#:, not AWS/...)", v))
		return metrics.DefaultNamespace
	}
	return v
}

func (r *reader) level(name string) slog.Level {
	var l slog.Level
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return slog.LevelInfo
	}
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, fmt.Errorf("%q is not one of debug, info, warn, error", v))
	}
	return l
}

// CubeOptionsFor are the options of the client of d's Cube.
func (c Config) CubeOptionsFor(d deploy.Deployment) cube.Options {
	return cube.Options{
		BaseURL:        d.URL,
		Issuer:         c.CubeTokenIssuer,
		RequestTimeout: c.CubeRequestTimeout,
		WaitDeadline:   c.CubeWaitDeadline,
	}
}

// SecretOptions are the options of every secret's cache.
func (c Config) SecretOptions() secrets.Options {
	return secrets.Options{TTL: c.SecretCacheTTL, StaleFor: c.SecretStaleFor}
}

// GitLabOptions are the gitlab access mode's options.
func (c Config) GitLabOptions() access.GitLabOptions {
	return access.GitLabOptions{
		URL:       c.GitLabURL,
		Timeout:   c.GitLabTimeout,
		AllowTTL:  c.GitLabAllowTTL,
		DenyTTL:   c.GitLabDenyTTL,
		CacheSize: c.GitLabCacheSize,
	}
}

// JWKSOptions are the options of jwt mode with an issuer's keys; log
// receives the failures of its background fetches.
func (c Config) JWKSOptions(log *slog.Logger) access.JWKSOptions {
	return access.JWKSOptions{
		URL:           c.JWKSURL,
		Issuer:        c.JWTIssuer,
		Audience:      c.JWTAudience,
		ProjectsClaim: c.JWTProjectsClaim,
		Log:           log,
	}
}

// JWTOptions are the options of jwt mode with a shared HS256 key, which key
// returns.
func (c Config) JWTOptions(key func(context.Context) (string, error)) access.JWTOptions {
	return access.JWTOptions{
		Key:           key,
		Issuer:        c.JWTIssuer,
		Audience:      c.JWTAudience,
		ProjectsClaim: c.JWTProjectsClaim,
	}
}

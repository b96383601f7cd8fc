package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWKSOptions configure a checker of tokens signed by an OIDC issuer (GitLab
// CI ID tokens, or any issuer that publishes a JWKS).
type JWKSOptions struct {
	// URL is the issuer's JWKS, e.g. https://gitlab.example.com/oauth/discovery/keys.
	URL string
	// Issuer must equal the token's iss, and Audience be among its aud: both
	// are required, since any token the issuer signs for any other
	// audience would otherwise pass.
	Issuer, Audience string
	// ProjectsClaim names the claim listing the readable project IDs
	// (default DefaultProjectsClaim); "project_id" for GitLab CI ID tokens.
	ProjectsClaim string
	// Leeway allows for clock skew on exp, nbf and iat (default 30s).
	Leeway time.Duration
	// Timeout bounds one fetch of the JWKS (default 5s).
	Timeout time.Duration
	// RefreshInterval is how often the JWKS is fetched in the background
	// (default 1h), so that removed keys stop verifying.
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between two fetches caused by
	// tokens naming a key that is not in the set (default 1m): a rotation is
	// picked up at once, while a flood of made-up kids costs at most one
	// fetch per interval.
	UnknownKIDInterval time.Duration
	// Client fetches the JWKS (default: a keep-alive client of our own).
	Client *http.Client
	// Log receives the failures of background fetches (default: discarded).
	Log *slog.Logger
}

// NewJWKS returns a checker of RS256 and ES256 tokens verified with the keys
// of opts.URL. It fetches the JWKS once before returning; that fetch failing
// is not an error: requests are answered 503 until a later fetch succeeds.
// ctx bounds the background refresh goroutine: pass the process's context,
// since the checker is built once at cold start.
func NewJWKS(ctx context.Context, opts JWKSOptions) (*JWT, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("the JWKS URL %q is not an http(s) URL", opts.URL)
	}
	if opts.Issuer == "" || opts.Audience == "" {
		return nil, errors.New("a JWKS checker needs both an issuer and an audience")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = time.Hour
	}
	if opts.UnknownKIDInterval <= 0 {
		opts.UnknownKIDInterval = time.Minute
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	noErrorOnFirstFetch := true
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{opts.URL}, keyfunc.Override{
		Client:      opts.Client,
		HTTPTimeout: opts.Timeout,
		// A JWKS that is down at cold start must not fail the process for
		// its lifetime: the checker answers 503 and fetches again later.
		NoErrorReturnFirstHTTPReq: &noErrorOnFirstFetch,
		RefreshInterval:           opts.RefreshInterval,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(opts.UnknownKIDInterval), 1),
		// keyfunc bounds the wait for the rate limiter and the fetch that
		// follows with one deadline this far away: a request waits at most
		// Timeout for a refresh, and fails at once when the limiter's next
		// token is further off.
		RateLimitWaitMax: opts.Timeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				opts.Log.WarnContext(ctx, "fetching the JWKS failed", "url", u, "error", err.Error())
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the JWKS client for %s: %w", opts.URL, err)
	}
	src := jwksSource{kf: kf}
	// The accepted algorithms. Each belongs to one key type, and fitsAlg
	// holds a token to the key type of its alg, so a token cannot pick a
	// verification its key was not made for (HS256 with an RSA public key as
	// the HMAC secret: alg confusion).
	algs := []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}
	return newJWT(claimOptions{opts.Issuer, opts.Audience, opts.ProjectsClaim, opts.Leeway}, algs, src.key), nil
}

// jwksSource finds the key of a token in the JWKS.
type jwksSource struct {
	kf keyfunc.Keyfunc
}

func (s jwksSource) key(ctx context.Context, t *jwt.Token) (any, error) {
	key, err := s.kf.KeyfuncCtx(ctx)(t)
	if err != nil {
		if s.empty(ctx) {
			// Not one key was ever fetched: nothing can be verified, and
			// the fault is the issuer's, not the caller's.
			return nil, fmt.Errorf("%w: the JWKS has not been fetched: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("finding the token's key in the JWKS: %w", err)
	}
	if set, ok := key.(jwt.VerificationKeySet); ok {
		// A token without kid: any key of the right type may verify it.
		var fit jwt.VerificationKeySet
		for _, k := range set.Keys {
			if fitsAlg(k, t.Method.Alg()) {
				fit.Keys = append(fit.Keys, k)
			}
		}
		if len(fit.Keys) == 0 {
			return nil, fmt.Errorf("no key in the JWKS is made for %s", t.Method.Alg())
		}
		return fit, nil
	}
	if !fitsAlg(key, t.Method.Alg()) {
		return nil, fmt.Errorf("the token's key (%T) is not made for %s", key, t.Method.Alg())
	}
	return key, nil
}

// empty reports whether the JWKS holds no key at all.
func (s jwksSource) empty(ctx context.Context) bool {
	keys, err := s.kf.Storage().KeyReadAll(ctx)
	return err != nil || len(keys) == 0
}

// fitsAlg reports whether key is of the type alg verifies with.
func fitsAlg(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == jwt.SigningMethodRS256.Alg()
	case *ecdsa.PublicKey:
		return alg == jwt.SigningMethodES256.Alg() && k.Curve == elliptic.P256()
	}
	return false
}

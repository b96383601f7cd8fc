// Package app assembles the API from its configuration: the one place where
// the Secrets Manager client, the secret caches, the access checker and the
// Cube client are built, once per process.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"productanalytics/shared/access"
	"productanalytics/shared/api"
	"productanalytics/shared/config"
	"productanalytics/shared/cube"
	"productanalytics/shared/secrets"
	"productanalytics/shared/warmup"
)

// Logger returns the JSON logger every process logs with.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// New builds the API handler from the environment. It never fails: when the
// configuration is wrong it logs why, and the handler answers every request
// with 503, so that the cause is one log search away.
func New(ctx context.Context, getenv func(string) string, logOut io.Writer, endpoints ...cube.Endpoint) (http.Handler, *slog.Logger) {
	cfg, err := config.Load(getenv)
	log := Logger(logOut, cfg.LogLevel)
	if err != nil {
		log.Error("configuration is invalid; every request will be answered 503", "error", err.Error())
		return Unavailable(log), log
	}
	h, err := Build(ctx, cfg, log, endpoints...)
	if err != nil {
		log.Error("start-up failed; every request will be answered 503", "error", err.Error())
		return Unavailable(log), log
	}
	return h, log
}

// Build builds the API handler from a valid configuration, reading secrets
// from the Secrets Manager of the process's AWS configuration.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger, endpoints ...cube.Endpoint) (http.Handler, error) {
	sm, err := SecretsManager(ctx)
	if err != nil {
		return nil, err
	}
	return BuildWith(ctx, cfg, log, sm, endpoints...)
}

// BuildWith is Build with the Secrets Manager client given. The secrets the
// first requests need are fetched at once, concurrently, so that a cold
// start waits for one round trip to Secrets Manager rather than two in turn.
func BuildWith(ctx context.Context, cfg config.Config, log *slog.Logger, sm secrets.GetSecretValueAPI, endpoints ...cube.Endpoint) (http.Handler, error) {
	var prefetch []*secrets.Cache
	checker, err := Checker(ctx, cfg, log, func(id string) *secrets.Cache {
		c := secrets.NewCache(secrets.SecretsManager(sm, id), cacheOptions(cfg))
		prefetch = append(prefetch, c)
		return c
	})
	if err != nil {
		return nil, err
	}
	key := cubeKey(sm, cfg)
	for _, c := range append(prefetch, key) {
		c.Prefetch()
	}
	return api.NewHandler(checker, newCubeClient(key, cfg), log, endpoints...), nil
}

// Checker builds the caller access checker of cfg's mode, once per process.
// ctx bounds its background work (the JWKS refresh), so it must live as long
// as the process; secret builds the cache of a Secrets Manager secret, for
// the HS256 key.
func Checker(ctx context.Context, cfg config.Config, log *slog.Logger, secret func(id string) *secrets.Cache) (access.Checker, error) {
	switch {
	case cfg.AuthMode == config.AuthGitLab:
		g, err := access.NewGitLab(access.GitLabOptions{
			URL:       cfg.GitLabURL,
			Timeout:   cfg.GitLabTimeout,
			AllowTTL:  cfg.GitLabAllowTTL,
			DenyTTL:   cfg.GitLabDenyTTL,
			CacheSize: cfg.GitLabCacheSize,
		})
		if err != nil {
			return nil, fmt.Errorf("building the GitLab access checker: %w", err)
		}
		return g, nil
	case cfg.JWKSURL != "":
		j, err := access.NewJWKS(ctx, access.JWKSOptions{
			URL:           cfg.JWKSURL,
			Issuer:        cfg.JWTIssuer,
			Audience:      cfg.JWTAudience,
			ProjectsClaim: cfg.JWTProjectsClaim,
			Log:           log,
		})
		if err != nil {
			return nil, fmt.Errorf("building the JWKS access checker: %w", err)
		}
		return j, nil
	}
	return access.NewJWT(access.JWTOptions{
		Key:           secret(cfg.JWTSecretID).Get,
		Issuer:        cfg.JWTIssuer,
		Audience:      cfg.JWTAudience,
		ProjectsClaim: cfg.JWTProjectsClaim,
	}), nil
}

// CubeClient builds the Cube client from a valid configuration, with its
// key from sm.
func CubeClient(cfg config.Config, sm secrets.GetSecretValueAPI) *cube.Client {
	key := cubeKey(sm, cfg)
	key.Prefetch()
	return newCubeClient(key, cfg)
}

// SecretsManager returns the Secrets Manager client of the process's AWS
// configuration (region, credentials, AWS_ENDPOINT_URL_SECRETS_MANAGER).
func SecretsManager(ctx context.Context) (*secretsmanager.Client, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return secretsmanager.NewFromConfig(awsCfg), nil
}

func cacheOptions(cfg config.Config) secrets.Options {
	return secrets.Options{TTL: cfg.SecretCacheTTL, StaleFor: cfg.SecretStaleFor}
}

func cubeKey(sm secrets.GetSecretValueAPI, cfg config.Config) *secrets.Cache {
	return secrets.NewCache(secrets.SecretsManager(sm, cfg.CubeKeySecretID), cacheOptions(cfg))
}

func newCubeClient(key cube.Keys, cfg config.Config) *cube.Client {
	return cube.NewClient(key, cube.Options{
		BaseURL:        cfg.CubeAPIURL,
		Issuer:         cfg.CubeTokenIssuer,
		RequestTimeout: cfg.CubeRequestTimeout,
		WaitDeadline:   cfg.CubeWaitDeadline,
	})
}

// Warmup builds the warm-up function's handler from the environment. With
// an invalid configuration it logs why, and every invocation fails with the
// reason.
func Warmup(ctx context.Context, getenv func(string) string, logOut io.Writer) func(context.Context, json.RawMessage) (warmup.Summary, error) {
	cfg, err := config.LoadCube(getenv)
	log := Logger(logOut, cfg.LogLevel)
	var client *cube.Client
	if err == nil {
		var sm *secretsmanager.Client
		if sm, err = SecretsManager(ctx); err == nil {
			client = CubeClient(cfg, sm)
		}
	}
	if err != nil {
		log.Error("configuration is invalid; every warm-up will fail", "error", err.Error())
		return func(context.Context, json.RawMessage) (warmup.Summary, error) {
			return warmup.Summary{}, fmt.Errorf("the warm-up is not configured: %w", err)
		}
	}
	return warmup.NewRunner(client, log).Handler
}

// Unavailable answers every request with 503 and a message; it serves when
// the configuration is invalid.
func Unavailable(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"message":"503 Service Unavailable: the service is not configured"}`)
		log.Error("request refused: the service is not configured", "path", r.URL.Path, "status", http.StatusServiceUnavailable)
	})
}

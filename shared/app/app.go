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

// Build builds the API handler from a valid configuration.
func Build(ctx context.Context, cfg config.Config, log *slog.Logger, endpoints ...cube.Endpoint) (http.Handler, error) {
	sm, err := secretsManager(ctx)
	if err != nil {
		return nil, err
	}
	callerKey := secrets.NewCache(secrets.SecretsManager(sm, cfg.JWTSecretID), cacheOptions(cfg))
	checker := access.NewJWT(access.JWTOptions{
		Key:           callerKey.Get,
		Issuer:        cfg.JWTIssuer,
		Audience:      cfg.JWTAudience,
		ProjectsClaim: cfg.JWTProjectsClaim,
	})
	return api.NewHandler(checker, cubeClient(sm, cfg), log, endpoints...), nil
}

// CubeClient builds the Cube client, with its key from Secrets Manager, from
// a valid configuration.
func CubeClient(ctx context.Context, cfg config.Config) (*cube.Client, error) {
	sm, err := secretsManager(ctx)
	if err != nil {
		return nil, err
	}
	return cubeClient(sm, cfg), nil
}

func secretsManager(ctx context.Context) (*secretsmanager.Client, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return secretsmanager.NewFromConfig(awsCfg), nil
}

func cacheOptions(cfg config.Config) secrets.Options {
	return secrets.Options{TTL: cfg.SecretCacheTTL, StaleFor: cfg.SecretStaleFor}
}

func cubeClient(sm *secretsmanager.Client, cfg config.Config) *cube.Client {
	key := secrets.NewCache(secrets.SecretsManager(sm, cfg.CubeKeySecretID), cacheOptions(cfg))
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
		client, err = CubeClient(ctx, cfg)
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

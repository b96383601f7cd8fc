// Package app assembles the API from its configuration: the one place where
// the Secrets Manager client, the secret caches, the access checker and the
// Cube clients (one per deployment) are built, once per process. The Lambda functions, the local
// server and the local stack all build the API through New.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"productanalytics/shared/access"
	"productanalytics/shared/api"
	"productanalytics/shared/apigw"
	"productanalytics/shared/config"
	"productanalytics/shared/cube"
	"productanalytics/shared/deploy"
	"productanalytics/shared/metrics"
	"productanalytics/shared/secrets"
)

// Options say where the configuration comes from and what is served. The
// zero value is a whole API configured from the process's environment,
// logging to standard output.
type Options struct {
	// Getenv reads the configuration (default os.Getenv).
	Getenv func(string) string
	// Log receives the JSON logs (default os.Stdout).
	Log io.Writer
	// Endpoints are the calls served; none means all.
	Endpoints []cube.Endpoint
	// AnswerFits is the transport's limit on an answer (see api.Options).
	AnswerFits func(http.Header, []byte) bool
	// SecretsManager reads the keys (default: a client of the process's AWS
	// configuration: region, credentials, AWS_ENDPOINT_URL_SECRETS_MANAGER).
	SecretsManager secrets.GetSecretValueAPI
}

func (o *Options) defaults() {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Log == nil {
		o.Log = os.Stdout
	}
}

// New builds the API handler. When the configuration is invalid it logs
// why, and returns the error with a handler that answers every request 503
// (api.Unconfigured), so that the cause is one log search away.
func New(ctx context.Context, o Options) (http.Handler, *slog.Logger, error) {
	o.defaults()
	cfg, err := config.Load(o.Getenv)
	log := slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: cfg.LogLevel}))
	counters := &metrics.Counters{}
	rec := metrics.NewRecorder(cfg.MetricsNamespace, counters, log)
	if err == nil {
		var h http.Handler
		if h, err = build(ctx, cfg, log, rec, counters, o); err == nil {
			return h, log, nil
		}
	}
	log.Error("the API cannot start; every request will be answered 503", "error", err.Error())
	return api.Unconfigured(log, rec), log, err
}

// Lambda builds, from the process's environment, the handler of a Lambda
// function that serves one endpoint behind API Gateway.
func Lambda(e cube.Endpoint) http.Handler {
	h, _, _ := New(context.Background(), Options{Endpoints: []cube.Endpoint{e}, AnswerFits: apigw.Fits})
	return h
}

// build wires the API from a valid configuration. The secrets the first
// requests need are fetched at once, concurrently, so that a cold start
// waits for one round trip to Secrets Manager rather than two in turn.
func build(ctx context.Context, cfg config.Config, log *slog.Logger, rec *metrics.Recorder, counters *metrics.Counters, o Options) (http.Handler, error) {
	sm, err := secretsManager(ctx, o)
	if err != nil {
		return nil, err
	}
	cubes, err := CubeClients(cfg, sm, counters)
	if err != nil {
		return nil, err
	}
	var checker access.Checker
	switch {
	case cfg.AuthMode == config.AuthGitLab:
		opts := cfg.GitLabOptions()
		opts.CacheLookup = counters.AccessCacheLookup
		if checker, err = access.NewGitLab(opts); err != nil {
			return nil, fmt.Errorf("building the GitLab access checker: %w", err)
		}
	case cfg.JWKSURL != "":
		// ctx bounds the JWKS refresh: it lives as long as the process.
		if checker, err = access.NewJWKS(ctx, cfg.JWKSOptions(log)); err != nil {
			return nil, fmt.Errorf("building the JWKS access checker: %w", err)
		}
	default:
		callerKey := secrets.NewCache(counted(secrets.SecretsManager(sm, cfg.JWTSecretID), counters), cfg.SecretOptions())
		callerKey.Prefetch()
		checker = access.NewJWT(cfg.JWTOptions(callerKey.Get))
	}
	funnelsCfg, err := config.LoadFunnels(o.Getenv)
	if err != nil {
		return nil, err
	}
	defs, err := funnelsCfg.Cache(ctx, sm, cfg.SecretOptions())
	if err != nil {
		return nil, fmt.Errorf("building the funnels' source: %w", err)
	}
	// A nil *funnels.Cache must not become a non-nil interface.
	var funnelSets api.Funnels
	if defs != nil {
		funnelSets = defs
	}
	h := api.NewHandler(checker, cubes, log, api.Options{Endpoints: o.Endpoints, AnswerFits: o.AnswerFits, Metrics: rec, MaxInFlightPerProject: cfg.MaxInFlightPerProject, Funnels: funnelSets})
	// Each dashboard opened marks its project for the warm-up, when the
	// table of recently opened projects is configured.
	return RecentMarks(ctx, o.Getenv, log, h)
}

// CubeClients builds, for each Cube deployment of cfg, its key's cache
// (fetched at once, in the background) and its client, and routes each
// project's calls to its deployment's client.
func CubeClients(cfg config.Config, sm secrets.GetSecretValueAPI, counters *metrics.Counters) (*cube.Routed, error) {
	router, err := cfg.Router()
	if err != nil {
		return nil, fmt.Errorf("placing projects on Cube deployments: %w", err)
	}
	return cube.NewRouted(router, func(d deploy.Deployment) (*cube.Client, error) {
		key := secrets.NewCache(counted(secrets.SecretsManager(sm, d.KeySecretID), counters), cfg.SecretOptions())
		key.Prefetch()
		return cube.NewClient(key, cfg.CubeOptionsFor(d)), nil
	})
}

// counted tells counters of each call fetch makes to Secrets Manager.
func counted(fetch secrets.Fetcher, counters *metrics.Counters) secrets.Fetcher {
	return func(ctx context.Context) (string, error) {
		v, err := fetch(ctx)
		counters.SecretFetched(err)
		return v, err
	}
}

func secretsManager(ctx context.Context, o Options) (secrets.GetSecretValueAPI, error) {
	if o.SecretsManager != nil {
		return o.SecretsManager, nil
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return secretsmanager.NewFromConfig(awsCfg), nil
}

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"productanalytics/shared/config"
	"productanalytics/shared/cube"
	"productanalytics/shared/metrics"
	"productanalytics/shared/secrets"
	"productanalytics/shared/warmup"
)

// Warmup builds the warm-up function's handler. With an invalid
// configuration it logs why, and every invocation fails with the reason.
func Warmup(ctx context.Context, o Options) func(context.Context, json.RawMessage) (warmup.Summary, error) {
	o.defaults()
	cfg, err := config.LoadCube(o.Getenv)
	log := slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: cfg.LogLevel}))
	var sm secrets.GetSecretValueAPI
	if err == nil {
		sm, err = secretsManager(ctx, o)
	}
	if err != nil {
		log.Error("the warm-up cannot start; every invocation will fail", "error", err.Error())
		return func(context.Context, json.RawMessage) (warmup.Summary, error) {
			return warmup.Summary{}, fmt.Errorf("the warm-up is not configured: %w", err)
		}
	}
	counters := &metrics.Counters{}
	key := secrets.NewCache(counted(secrets.SecretsManager(sm, cfg.CubeKeySecretID), counters), cfg.SecretOptions())
	key.Prefetch()
	return warmup.NewRunner(cube.NewClient(key, cfg.CubeOptions()), log, metrics.NewRecorder(cfg.MetricsNamespace, counters, log)).Handler
}

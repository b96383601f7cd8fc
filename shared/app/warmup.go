package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"productanalytics/shared/config"
	"productanalytics/shared/metrics"
	"productanalytics/shared/recent"
	"productanalytics/shared/warmup"
)

// Warmup builds the handler of a warm-up run in one invocation: it warms
// the projects of its input itself, each on its deployment's Cube. With an
// invalid configuration it logs why, and every invocation fails with the
// reason.
func Warmup(ctx context.Context, o Options) func(context.Context, json.RawMessage) (warmup.Summary, error) {
	o.defaults()
	cfg, err := config.LoadCube(o.Getenv)
	log := slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: cfg.LogLevel}))
	var runner *warmup.Runner
	if err == nil {
		runner, err = warmupRunner(ctx, cfg, log, o)
	}
	if err != nil {
		log.Error("the warm-up cannot start; every invocation will fail", "error", err.Error())
		return func(context.Context, json.RawMessage) (warmup.Summary, error) {
			return warmup.Summary{}, fmt.Errorf("the warm-up is not configured: %w", err)
		}
	}
	return runner.Handler
}

// warmupRunner builds a Runner with the API's Cube clients, one per
// deployment, so that each project is warmed where the API sends it.
func warmupRunner(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) (*warmup.Runner, error) {
	sm, err := secretsManager(ctx, o)
	if err != nil {
		return nil, err
	}
	counters := &metrics.Counters{}
	clients, err := CubeClients(cfg, sm, counters)
	if err != nil {
		return nil, err
	}
	return warmup.NewRunner(clients, log, metrics.NewRecorder(cfg.MetricsNamespace, counters, log)), nil
}

// WarmupPlanner builds the scheduled function's handler: it lists the
// configured and the recently opened projects and sends them, in batches
// per deployment, to the warm-up queue. It reads no Cube key and calls no
// Cube.
func WarmupPlanner(ctx context.Context, o Options) func(context.Context, json.RawMessage) (warmup.Plan, error) {
	o.defaults()
	cfg, w, err := config.LoadWarmupPlan(o.Getenv)
	log := slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: cfg.LogLevel}))
	var p *warmup.Planner
	if err == nil {
		p, err = planner(ctx, cfg, w, log)
	}
	if err != nil {
		log.Error("the warm-up planner cannot start; every invocation will fail", "error", err.Error())
		return func(context.Context, json.RawMessage) (warmup.Plan, error) {
			return warmup.Plan{}, fmt.Errorf("the warm-up planner is not configured: %w", err)
		}
	}
	return p.Handler
}

func planner(ctx context.Context, cfg config.Config, w config.Warmup, log *slog.Logger) (*warmup.Planner, error) {
	router, err := cfg.Router()
	if err != nil {
		return nil, fmt.Errorf("placing projects on Cube deployments: %w", err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	o := warmup.PlanOptions{
		Queue:         sqs.NewFromConfig(awsCfg),
		QueueURL:      w.QueueURL,
		Place:         func(p int64) string { return router.For(p).Name },
		BatchProjects: w.BatchProjects,
		Slots:         w.Slots,
		Log:           log,
	}
	if w.RecentTable != "" {
		db := dynamodb.NewFromConfig(awsCfg)
		o.Recent = func(ctx context.Context) ([]int64, error) {
			return recent.List(ctx, db, w.RecentTable, time.Now().Add(-w.RecentWithin), 0)
		}
	}
	return warmup.NewPlanner(o), nil
}

// WarmupWorker builds the queue worker's handler: it warms one batch of
// projects per message, each on its deployment's Cube.
func WarmupWorker(ctx context.Context, o Options) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	o.defaults()
	cfg, w, err := config.LoadWarmupWorker(o.Getenv)
	log := slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: cfg.LogLevel}))
	var runner *warmup.Runner
	if err == nil {
		runner, err = warmupRunner(ctx, cfg, log, o)
	}
	if err != nil {
		log.Error("the warm-up worker cannot start; every invocation will fail", "error", err.Error())
		// Failing the invocation leaves every message on the queue, to be
		// retried and then moved to the dead-letter queue.
		return func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, fmt.Errorf("the warm-up worker is not configured: %w", err)
		}
	}
	return warmup.NewWorker(runner, warmup.WorkerOptions{Concurrency: w.QueryConcurrency, QueryTimeout: w.QueryTimeout}).Handler
}

// RecentMarks wraps the API's handler h so that each load answered 200
// marks its project as opened (shared/recent), when WARMUP_RECENT_TABLE is
// set; otherwise it returns h.
func RecentMarks(ctx context.Context, getenv func(string) string, log *slog.Logger, h http.Handler) (http.Handler, error) {
	cfg, err := config.LoadRecent(getenv)
	if err != nil || cfg.Table == "" {
		return h, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return h, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	m := recent.NewMarker(dynamodb.NewFromConfig(awsCfg), recent.Options{Table: cfg.Table, Every: cfg.Every}, log)
	return m.Handler(h), nil
}

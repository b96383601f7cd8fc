package config

import (
	"errors"
	"regexp"
	"time"
)

// Warmup is the configuration of the warm-up's two functions beside
// LoadCube's: the scheduled planner and the queue's worker.
type Warmup struct {
	// QueueURL is the warm-up queue the planner sends batches to
	// (WARMUP_QUEUE_URL); the planner requires it.
	QueueURL string
	// RecentTable is the DynamoDB table of recently opened projects
	// (WARMUP_RECENT_TABLE); empty, only the configured projects are warmed.
	RecentTable string
	// RecentWithin is how recently a project must have been opened to be
	// warmed (WARMUP_RECENT_WITHIN).
	RecentWithin time.Duration
	// BatchProjects is how many projects one message holds
	// (WARMUP_BATCH_PROJECTS).
	BatchProjects int
	// Slots is how many batches of one deployment are warmed at once
	// (WARMUP_SLOTS): the queue's message groups per deployment.
	Slots int
	// QueryConcurrency is how many queries of one batch are in flight
	// (WARMUP_QUERY_CONCURRENCY). A Cube gets at most Slots ×
	// QueryConcurrency warm-up queries at once.
	QueryConcurrency int
	// QueryTimeout bounds each warm-up query (WARMUP_QUERY_TIMEOUT).
	QueryTimeout time.Duration
}

// The warm-up's defaults.
const (
	DefaultWarmupRecentWithin     = 24 * time.Hour
	DefaultWarmupBatchProjects    = 10
	DefaultWarmupSlots            = 2
	DefaultWarmupQueryConcurrency = 4
	DefaultWarmupQueryTimeout     = 110 * time.Second
)

// WarmupPlanVariables lists the variables LoadWarmupPlan reads beside
// CubeVariables.
func WarmupPlanVariables() []string {
	return []string{"WARMUP_QUEUE_URL", "WARMUP_RECENT_TABLE", "WARMUP_RECENT_WITHIN", "WARMUP_BATCH_PROJECTS", "WARMUP_SLOTS"}
}

// WarmupWorkerVariables lists the variables LoadWarmupWorker reads beside
// CubeVariables.
func WarmupWorkerVariables() []string {
	return []string{"WARMUP_QUERY_CONCURRENCY", "WARMUP_QUERY_TIMEOUT"}
}

// RecentVariables lists the variables of marking opened projects, which
// the load function reads beside Variables.
func RecentVariables() []string {
	return []string{"WARMUP_RECENT_TABLE", "WARMUP_RECENT_EVERY"}
}

// tableName is a DynamoDB table name.
var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// sqsURL is an SQS queue URL: https, or http for an emulator.
var sqsURL = regexp.MustCompile(`^https?://[^/\s]+/[0-9]+/[A-Za-z0-9_-]{1,75}(\.fifo)?$`)

// LoadWarmupPlan reads the planner's configuration: CubeVariables (for the
// deployments) and WarmupPlanVariables.
func LoadWarmupPlan(getenv func(string) string) (Config, Warmup, error) {
	r := reader{getenv: getenv}
	c := r.cube()
	w := Warmup{
		QueueURL:      r.required("WARMUP_QUEUE_URL"),
		RecentTable:   r.table("WARMUP_RECENT_TABLE"),
		RecentWithin:  r.duration("WARMUP_RECENT_WITHIN", DefaultWarmupRecentWithin, time.Minute, 90*24*time.Hour),
		BatchProjects: r.integer("WARMUP_BATCH_PROJECTS", DefaultWarmupBatchProjects, 1, 100),
		Slots:         r.integer("WARMUP_SLOTS", DefaultWarmupSlots, 1, 100),
	}
	if w.QueueURL != "" && !sqsURL.MatchString(w.QueueURL) {
		r.fail("WARMUP_QUEUE_URL", errors.New("is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME.fifo)"))
	}
	return c, w, errors.Join(r.errs...)
}

// LoadWarmupWorker reads the worker's configuration: CubeVariables and
// WarmupWorkerVariables.
func LoadWarmupWorker(getenv func(string) string) (Config, Warmup, error) {
	r := reader{getenv: getenv}
	c := r.cube()
	w := Warmup{
		QueryConcurrency: r.integer("WARMUP_QUERY_CONCURRENCY", DefaultWarmupQueryConcurrency, 1, 32),
		QueryTimeout:     r.duration("WARMUP_QUERY_TIMEOUT", DefaultWarmupQueryTimeout, time.Second, 15*time.Minute),
	}
	return c, w, errors.Join(r.errs...)
}

// Recent is the configuration of marking the projects whose dashboards are
// opened (shared/recent).
type Recent struct {
	// Table is the DynamoDB table (WARMUP_RECENT_TABLE); empty, nothing is
	// marked.
	Table string
	// Every is how often at most one process marks a project
	// (WARMUP_RECENT_EVERY).
	Every time.Duration
}

// DefaultRecentEvery is WARMUP_RECENT_EVERY unless set: well within the
// warm-up's 15-minute period, and at most 144 writes a day per project.
const DefaultRecentEvery = 10 * time.Minute

// LoadRecent reads RecentVariables.
func LoadRecent(getenv func(string) string) (Recent, error) {
	r := reader{getenv: getenv}
	c := Recent{
		Table: r.table("WARMUP_RECENT_TABLE"),
		Every: r.duration("WARMUP_RECENT_EVERY", DefaultRecentEvery, time.Minute, 24*time.Hour),
	}
	return c, errors.Join(r.errs...)
}

// table reads an optional DynamoDB table name.
func (r *reader) table(name string) string {
	v := r.optional(name, "")
	if v != "" && !tableName.MatchString(v) {
		r.fail(name, errors.New("is not a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -)"))
		return ""
	}
	return v
}

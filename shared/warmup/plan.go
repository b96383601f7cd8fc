package warmup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"productanalytics/shared/trace"
)

// Queue is what the planner needs of an SQS client.
type Queue interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// RecentProjects lists the projects whose dashboards were opened recently.
type RecentProjects func(ctx context.Context) ([]int64, error)

// PlanOptions configure a Planner.
type PlanOptions struct {
	// Queue and QueueURL are the warm-up queue (FIFO).
	Queue    Queue
	QueueURL string
	// Place names a project's Cube deployment (deploy.Router.For's name).
	Place func(project int64) string
	// Recent, when set, adds the projects opened recently to the
	// configured ones.
	Recent RecentProjects
	// BatchProjects is how many projects a message holds (default 10).
	BatchProjects int
	// Slots is how many batches of one deployment are warmed at once
	// (default 2): its message groups.
	Slots int
	// SendTimeout bounds each call to SQS (default 10s).
	SendTimeout time.Duration
	// Log receives the plan's line.
	Log *slog.Logger
}

// Planner is the scheduled function: it decides which projects to warm and
// sends them, in batches per deployment, to the warm-up queue.
type Planner struct{ o PlanOptions }

// NewPlanner returns a Planner.
func NewPlanner(o PlanOptions) *Planner {
	if o.BatchProjects <= 0 {
		o.BatchProjects = 10
	}
	if o.Slots <= 0 {
		o.Slots = 2
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	return &Planner{o: o}
}

// PlanInput is what the schedule sends the planner.
type PlanInput struct {
	// Projects are always warmed (the template's WarmupProjects).
	Projects []int64 `json:"projects"`
}

// Plan is the planner's report.
type Plan struct {
	Run string `json:"run"`
	// Configured and Recent count the projects of each source, Projects
	// the distinct ones warmed.
	Configured int `json:"configured"`
	Recent     int `json:"recent"`
	Projects   int `json:"projects"`
	// RecentError says why the recent projects could not be listed: the
	// configured ones are warmed all the same.
	RecentError string `json:"recentError,omitempty"`
	// Deployments counts the projects per deployment.
	Deployments map[string]int `json:"deployments"`
	Batches     int            `json:"batches"`
	DurationMs  float64        `json:"durationMs"`
}

// Handler is the scheduled function's Lambda handler: raw is the schedule's
// input, or a whole EventBridge event whose detail is.
func (p *Planner) Handler(ctx context.Context, raw json.RawMessage) (Plan, error) {
	var in PlanInput
	if err := parseEvent(raw, &in); err != nil {
		p.o.Log.Error("warm-up plan refused", "reason", err.Error())
		return Plan{}, err
	}
	return p.Plan(ctx, in, time.Now())
}

// Plan sends the batches of in's projects and the recent ones, as of now.
func (p *Planner) Plan(ctx context.Context, in PlanInput, now time.Time) (Plan, error) {
	for _, id := range in.Projects {
		if id <= 0 {
			return Plan{}, fmt.Errorf("project %d is not a project ID", id)
		}
	}
	// A retried run within the same minute sends the same messages, which
	// the FIFO queue drops as duplicates.
	plan := Plan{Run: now.UTC().Format("20060102T1504Z"), Configured: len(in.Projects), Deployments: map[string]int{}}
	projects := in.Projects
	if p.o.Recent != nil {
		recent, err := p.o.Recent(ctx)
		if err != nil {
			// The configured projects are still worth warming.
			plan.RecentError = err.Error()
			p.o.Log.LogAttrs(ctx, slog.LevelWarn, "the recently opened projects cannot be listed", append(trace.Attrs(ctx), slog.String("reason", err.Error()))...)
		}
		plan.Recent = len(recent)
		projects = append(projects[:len(projects):len(projects)], recent...)
	}
	batches := Split(plan.Run, projects, p.o.Place, p.o.BatchProjects)
	plan.Batches = len(batches)
	slot := map[string]int{}
	entries := make([]types.SendMessageBatchRequestEntry, 0, len(batches))
	for i, b := range batches {
		plan.Projects += len(b.Projects)
		plan.Deployments[b.Deployment] += len(b.Projects)
		body, err := json.Marshal(b)
		if err != nil {
			return plan, fmt.Errorf("writing batch %d: %w", i, err)
		}
		group := b.Group(slot[b.Deployment] % p.o.Slots)
		slot[b.Deployment]++
		entries = append(entries, types.SendMessageBatchRequestEntry{
			Id:                     aws.String(strconv.Itoa(i)),
			MessageBody:            aws.String(string(body)),
			MessageGroupId:         aws.String(group),
			MessageDeduplicationId: aws.String(dedupID(body)),
		})
	}
	var errs []error
	for i := 0; i < len(entries); i += 10 {
		// SQS takes at most ten messages a call.
		if err := p.send(ctx, entries[i:min(i+10, len(entries))]); err != nil {
			errs = append(errs, err)
		}
	}
	plan.DurationMs = ms(time.Since(now))
	err := errors.Join(errs...)
	level := slog.LevelInfo
	attrs := append(trace.Attrs(ctx), slog.String("run", plan.Run), slog.Int("projects", plan.Projects), slog.Int("batches", plan.Batches), slog.Any("plan", plan))
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	p.o.Log.LogAttrs(ctx, level, "warm-up plan", attrs...)
	if err != nil {
		return plan, fmt.Errorf("sending the warm-up batches: %w", err)
	}
	return plan, nil
}

// send sends up to ten messages, and those SQS failed once more.
func (p *Planner) send(ctx context.Context, entries []types.SendMessageBatchRequestEntry) error {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, p.o.SendTimeout)
		out, err := p.o.Queue.SendMessageBatch(cctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.o.QueueURL), Entries: entries})
		cancel()
		if err != nil {
			return fmt.Errorf("%d messages: %w", len(entries), err)
		}
		if len(out.Failed) == 0 {
			return nil
		}
		failed := map[string]bool{}
		var reasons []error
		for _, f := range out.Failed {
			failed[aws.ToString(f.Id)] = true
			reasons = append(reasons, fmt.Errorf("message %s: %s %s", aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message)))
		}
		if attempt == 1 {
			return errors.Join(reasons...)
		}
		var again []types.SendMessageBatchRequestEntry
		for _, e := range entries {
			if failed[aws.ToString(e.Id)] {
				again = append(again, e)
			}
		}
		entries = again
	}
}

// dedupID is a message's deduplication id: its content's hash, which
// names its run.
func dedupID(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

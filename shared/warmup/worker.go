package warmup

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/shared/trace"
)

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// Concurrency is how many queries of one batch are in flight at once
	// (default 4). With the queue's message groups (PlanOptions.Slots) it
	// bounds what the warm-up takes of one Cube: Slots × Concurrency.
	Concurrency int
	// QueryTimeout bounds each query, Continue-wait polls included
	// (default 110s).
	QueryTimeout time.Duration
}

// Worker is the function the warm-up queue invokes: it warms one batch of
// projects per message, their dashboards and their funnels.
type Worker struct {
	run *Runner
	o   WorkerOptions
	log *slog.Logger
}

// NewWorker returns a Worker that warms with r.
func NewWorker(r *Runner, o WorkerOptions) *Worker {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 110 * time.Second
	}
	return &Worker{run: r, o: o, log: r.log}
}

// Handler is the worker's Lambda handler. It reports the messages whose
// batch failed for a reason that may pass (Cube unreachable, busy, failing
// or slow): SQS hands those out again, and after the queue's
// maxReceiveCount moves them to the dead-letter queue. A batch that cannot
// be read fails too, to land there. A project without data fails the same
// way each time and is not retried. The messages of a FIFO queue after a
// failed one are failed unread, so that their group keeps its order.
func (w *Worker) Handler(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	failedBefore := false
	for _, m := range ev.Records {
		if failedBefore && strings.HasSuffix(m.EventSourceARN, ".fifo") {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		if !w.Warm(ctx, m) {
			failedBefore = true
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, nil
}

// Warm warms the batch of message m and reports whether it is done with:
// warmed, or failed for good.
func (w *Worker) Warm(ctx context.Context, m events.SQSMessage) bool {
	attrs := append(trace.Attrs(ctx), slog.String("message_id", m.MessageId), slog.String("receive_count", m.Attributes["ApproximateReceiveCount"]))
	b, err := ParseBatch(m.Body)
	if err != nil {
		w.log.LogAttrs(ctx, slog.LevelError, "warm-up batch refused", append(attrs, slog.String("reason", err.Error()))...)
		return false
	}
	attrs = append(attrs, slog.String("run", b.Run), slog.String("deployment", b.Deployment), slog.Int("projects", len(b.Projects)))
	sum, err := w.run.Run(ctx, Input{
		Projects:     b.Projects,
		Concurrency:  w.o.Concurrency,
		QueryTimeout: Duration(w.o.QueryTimeout),
		Funnels:      true,
		logAttrs:     attrs,
	})
	if err != nil && !errors.Is(err, ErrAllFailed) {
		// Not run at all: an input the batch's check let through.
		w.log.LogAttrs(ctx, slog.LevelError, "warm-up batch refused", append(attrs, slog.String("reason", err.Error()))...)
		return false
	}
	if retry := sum.retries(); retry > 0 {
		w.log.LogAttrs(ctx, slog.LevelWarn, "warm-up batch to be retried", append(attrs, slog.Int("retryable_failures", retry))...)
		return false
	}
	return true
}

// retries counts the failures of a run that may pass on a later try.
func (s Summary) retries() int {
	n := 0
	for _, r := range s.Results {
		if r.Retry {
			n++
		}
	}
	for _, f := range s.Funnels {
		if f.Retry {
			n++
		}
	}
	return n
}

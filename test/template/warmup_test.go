package template_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/shared/config"
	"productanalytics/shared/recent"
	"productanalytics/shared/warmup"
)

// props reads resource id's properties into v.
func props(t *testing.T, tpl *template, id, typ string, v any) {
	t.Helper()
	r, ok := tpl.Resources[id]
	if !ok || r.Type != typ {
		t.Fatalf("template.yaml has no %s %s", typ, id)
	}
	if err := json.Unmarshal(r.Properties, v); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
}

func fn(t *testing.T, tpl *template, id string) function {
	t.Helper()
	for _, f := range tpl.functions(t) {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("template.yaml has no function %s", id)
	return function{}
}

// TestWarmupQueueIsWhatTheCodeNeeds ties the warm-up's queue, worker and
// table to the code: the planner sends to the queue it is given, with
// message groups (a FIFO queue); the worker takes one batch per invocation
// and reports the failed ones (partial batch responses), which the queue
// hands out again after the worker's timeout and then moves to a FIFO
// dead-letter queue; the table has the key and TTL shared/recent writes.
func TestWarmupQueueIsWhatTheCodeNeeds(t *testing.T) {
	tpl := loadTemplate(t)
	var queue, dlq struct {
		FifoQueue                 bool
		ContentBasedDeduplication bool
		VisibilityTimeout         int
		MessageRetentionPeriod    int
		RedrivePolicy             struct {
			DeadLetterTargetArn any `json:"deadLetterTargetArn"`
			MaxReceiveCount     int `json:"maxReceiveCount"`
		}
	}
	props(t, tpl, "WarmupQueue", "AWS::SQS::Queue", &queue)
	props(t, tpl, "WarmupDeadLetterQueue", "AWS::SQS::Queue", &dlq)
	if !queue.FifoQueue || !dlq.FifoQueue {
		t.Errorf("FifoQueue: queue %v, dead-letter queue %v; the planner sends message groups, which need FIFO queues", queue.FifoQueue, dlq.FifoQueue)
	}
	if queue.ContentBasedDeduplication {
		t.Error("ContentBasedDeduplication: the planner sends its own deduplication ids")
	}
	if att, ok := getAtt(queue.RedrivePolicy.DeadLetterTargetArn); !ok || att != "WarmupDeadLetterQueue.Arn" || queue.RedrivePolicy.MaxReceiveCount < 2 {
		t.Errorf("RedrivePolicy %+v; want a few tries, then !GetAtt WarmupDeadLetterQueue.Arn", queue.RedrivePolicy)
	}
	if dlq.MessageRetentionPeriod <= queue.MessageRetentionPeriod {
		t.Errorf("the dead-letter queue keeps messages %d s, no longer than the queue (%d s)", dlq.MessageRetentionPeriod, queue.MessageRetentionPeriod)
	}

	worker := fn(t, tpl, "WarmworkerFunction")
	if queue.VisibilityTimeout < worker.Props.Timeout {
		t.Errorf("VisibilityTimeout %d s is shorter than the worker's %d s: a batch would be handed out again while it is warmed", queue.VisibilityTimeout, worker.Props.Timeout)
	}
	if queue.VisibilityTimeout > 2*worker.Props.Timeout {
		t.Errorf("VisibilityTimeout %d s: a failed batch would wait that long, blocking its message group, before its retry", queue.VisibilityTimeout)
	}
	ev, ok := worker.Props.Events["Queue"]
	if !ok || ev.Type != "SQS" {
		t.Fatalf("WarmworkerFunction events %v; want an SQS event named Queue", worker.Props.Events)
	}
	if att, ok := getAtt(ev.Properties["Queue"]); !ok || att != "WarmupQueue.Arn" {
		t.Errorf("the worker reads %v, want !GetAtt WarmupQueue.Arn", ev.Properties["Queue"])
	}
	if fmt.Sprint(ev.Properties["BatchSize"]) != "1" {
		t.Errorf("BatchSize %v; want 1: one batch of projects per invocation", ev.Properties["BatchSize"])
	}
	if types, _ := ev.Properties["FunctionResponseTypes"].([]any); len(types) != 1 || types[0] != "ReportBatchItemFailures" {
		t.Errorf("FunctionResponseTypes %v; the worker answers partial batch failures", ev.Properties["FunctionResponseTypes"])
	}
	scaling, _ := ev.Properties["ScalingConfig"].(map[string]any)
	if p, ok := ref(scaling["MaximumConcurrency"]); !ok || p != "WarmupMaxConcurrency" {
		t.Errorf("ScalingConfig %v; want MaximumConcurrency: !Ref WarmupMaxConcurrency", ev.Properties["ScalingConfig"])
	}

	// The worker's settings leave each query its time within an invocation.
	res := newResolver(t, tpl, sampleParameters["hs256"])
	env := map[string]string{}
	for _, v := range []map[string]any{tpl.Globals.Function.Environment.Variables, worker.Props.Environment.Variables} {
		for k, val := range v {
			env[k], _ = res.value(val)
		}
	}
	_, w, err := config.LoadWarmupWorker(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if w.QueryTimeout >= time.Duration(worker.Props.Timeout)*time.Second/2 {
		t.Errorf("WARMUP_QUERY_TIMEOUT %s leaves too little of the worker's %d s for the other queries", w.QueryTimeout, worker.Props.Timeout)
	}

	planner := fn(t, tpl, "WarmupFunction")
	if q, ok := ref(planner.Props.Environment.Variables["WARMUP_QUEUE_URL"]); !ok || q != "WarmupQueue" {
		t.Errorf("WARMUP_QUEUE_URL is %v, want !Ref WarmupQueue", planner.Props.Environment.Variables["WARMUP_QUEUE_URL"])
	}
	for _, id := range []string{"WarmupFunction", "LoadFunction"} {
		if tbl, ok := ref(fn(t, tpl, id).Props.Environment.Variables["WARMUP_RECENT_TABLE"]); !ok || tbl != "RecentlyOpenedTable" {
			t.Errorf("%s: WARMUP_RECENT_TABLE is not !Ref RecentlyOpenedTable", id)
		}
	}
	var table struct {
		BillingMode             string
		KeySchema               []struct{ AttributeName, KeyType string }
		AttributeDefinitions    []struct{ AttributeName, AttributeType string }
		TimeToLiveSpecification struct {
			AttributeName string
			Enabled       bool
		}
	}
	props(t, tpl, "RecentlyOpenedTable", "AWS::DynamoDB::Table", &table)
	if len(table.KeySchema) != 1 || table.KeySchema[0].AttributeName != recent.Project || table.KeySchema[0].KeyType != "HASH" ||
		len(table.AttributeDefinitions) != 1 || table.AttributeDefinitions[0].AttributeType != "N" {
		t.Errorf("the table's key %+v %+v; want %s, a number", table.KeySchema, table.AttributeDefinitions, recent.Project)
	}
	if !table.TimeToLiveSpecification.Enabled || table.TimeToLiveSpecification.AttributeName != recent.ExpiresAt {
		t.Errorf("the table's TTL %+v; want %s", table.TimeToLiveSpecification, recent.ExpiresAt)
	}
	if table.BillingMode != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode %s; the table is written in bursts and scanned every period", table.BillingMode)
	}
}

// TestWarmupEvents checks the warm-up's messages in events/: the schedule's
// input reads as the planner's, and the SQS event is what the planner
// sends, as the queue hands it to the worker.
func TestWarmupEvents(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "events", "warmup.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in warmup.PlanInput
	if err := json.Unmarshal(raw, &in); err != nil || len(in.Projects) == 0 {
		t.Errorf("events/warmup.json: %v %+v", err, in)
	}
	raw, err = os.ReadFile(filepath.Join(root, "events", "warmup-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) == 0 {
		t.Fatalf("events/warmup-batch.json: %v", err)
	}
	for _, m := range ev.Records {
		b, err := warmup.ParseBatch(m.Body)
		if err != nil {
			t.Errorf("message %s: %v", m.MessageId, err)
			continue
		}
		sum := sha256.Sum256([]byte(m.Body))
		if m.EventSource != "aws:sqs" || !strings.HasSuffix(m.EventSourceARN, ".fifo") || !strings.HasPrefix(m.Attributes["MessageGroupId"], b.Deployment+".") ||
			m.Attributes["MessageDeduplicationId"] != hex.EncodeToString(sum[:]) || m.Attributes["ApproximateReceiveCount"] == "" {
			t.Errorf("message %s is not what the planner sends through a FIFO queue: %+v", m.MessageId, m)
		}
	}
}

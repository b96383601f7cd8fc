package warmup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"productanalytics/internal/motoserver"
	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
)

// parity places even projects on "even" and odd ones on "odd".
func parity(p int64) string {
	if p%2 == 0 {
		return "even"
	}
	return "odd"
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name     string
		projects []int64
		size     int
		want     []Batch
	}{
		{"none", nil, 10, nil},
		{"one deployment, cut", []int64{5, 1, 3}, 2, []Batch{{Run: "r", Deployment: "odd", Projects: []int64{1, 3}}, {Run: "r", Deployment: "odd", Projects: []int64{5}}}},
		{"two deployments, duplicates and non-IDs dropped", []int64{4, 1, 2, 1, 0, -3, 4}, 10,
			[]Batch{{Run: "r", Deployment: "even", Projects: []int64{2, 4}}, {Run: "r", Deployment: "odd", Projects: []int64{1}}}},
		{"size bounded", []int64{1}, 0, []Batch{{Run: "r", Deployment: "odd", Projects: []int64{1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split("r", tt.projects, parity, tt.size)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	big := make([]int64, 1000)
	for i := range big {
		big[i] = int64(i + 1)
	}
	for _, b := range Split("r", big, parity, 1000) {
		if len(b.Projects) != MaxBatchProjects {
			t.Errorf("a batch of %d projects, want at most %d", len(b.Projects), MaxBatchProjects)
		}
	}
}

func ExampleSplit() {
	place := func(p int64) string { return map[bool]string{true: "cube-a", false: "cube-b"}[p <= 3] }
	for _, b := range Split("20261203T0400Z", []int64{5, 1, 2, 3, 4}, place, 2) {
		fmt.Println(b.Deployment, b.Projects)
	}
	// Output:
	// cube-a [1 2]
	// cube-a [3]
	// cube-b [4 5]
}

func TestParseBatch(t *testing.T) {
	tests := []struct{ name, body, err string }{
		{"batch", `{"run":"r","deployment":"a","projects":[1,2]}`, ""},
		{"not JSON", `warm 1`, "not a warm-up batch"},
		{"no projects", `{"deployment":"a"}`, "no projects"},
		{"not an ID", `{"projects":[1,0]}`, "not a project ID"},
		{"too many", `{"projects":[` + strings.Repeat("1,", MaxBatchProjects) + `1]}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBatch(tt.body)
			if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("got %v, want %q", err, tt.err)
			}
		})
	}
}

// fifoQueue creates a FIFO queue in a moto_server for the test.
func fifoQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	m := motoserver.Start(t)
	q := m.SQS()
	out, err := q.CreateQueue(t.Context(), &sqs.CreateQueueInput{
		QueueName:  aws.String("warmup-test.fifo"),
		Attributes: map[string]string{"FifoQueue": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return q, aws.ToString(out.QueueUrl)
}

// received is every message on the queue, with its group.
func received(t *testing.T, q *sqs.Client, url string) map[string][]Batch {
	t.Helper()
	groups := map[string][]Batch{}
	for {
		out, err := q.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return groups
		}
		for _, m := range out.Messages {
			b, err := ParseBatch(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			g := m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
			groups[g] = append(groups[g], b)
		}
	}
}

// TestPlannerSendsBatchesPerDeployment plans the configured and the recent
// projects onto a real FIFO queue (moto's): each project once, in a batch
// of its deployment, each deployment's batches spread over its slots; the
// same run sent again adds nothing.
func TestPlannerSendsBatchesPerDeployment(t *testing.T) {
	q, url := fifoQueue(t)
	var configured, recent []int64
	for p := int64(1); p <= 50; p++ {
		configured = append(configured, p)
	}
	for p := int64(40); p <= 75; p++ {
		recent = append(recent, p)
	}
	p := NewPlanner(PlanOptions{Queue: q, QueueURL: url, Place: parity, BatchProjects: 4, Slots: 3,
		Recent: func(context.Context) ([]int64, error) { return recent, nil },
		Log:    slog.New(slog.NewJSONHandler(io.Discard, nil))})
	now := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	plan, err := p.Plan(t.Context(), PlanInput{Projects: configured}, now)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Configured != 50 || plan.Recent != 36 || plan.Projects != 75 || plan.Deployments["even"] != 37 || plan.Deployments["odd"] != 38 || plan.Batches != 10+10 {
		t.Errorf("plan %+v", plan)
	}
	groups := received(t, q, url)
	seen := map[int64]int{}
	for g, bs := range groups {
		for _, b := range bs {
			if !strings.HasPrefix(g, b.Deployment+".") || b.Run != "20261203T0400Z" {
				t.Errorf("batch %+v in group %s", b, g)
			}
			for _, p := range b.Projects {
				seen[p]++
				if parity(p) != b.Deployment {
					t.Errorf("project %d in a batch of %s", p, b.Deployment)
				}
			}
		}
	}
	if len(seen) != 75 {
		t.Errorf("%d projects on the queue, want 75", len(seen))
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("project %d sent %d times", p, n)
		}
	}
	wantGroups := []string{"even.0", "even.1", "even.2", "odd.0", "odd.1", "odd.2"}
	if got := slices.Sorted(maps.Keys(groups)); !slices.Equal(got, wantGroups) {
		t.Errorf("groups %v, want %v", got, wantGroups)
	}
	// A retry of the same run sends the same messages: the queue drops them.
	if _, err := p.Plan(t.Context(), PlanInput{Projects: configured}, now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if again := received(t, q, url); len(again) != 0 {
		t.Errorf("the same run sent twice put %d more groups on the queue", len(again))
	}
}

// TestPlannerWithoutRecentProjects: when the recent projects cannot be
// listed, the configured ones are planned all the same, and the plan says
// why; a plan that cannot reach the queue fails.
func TestPlannerWithoutRecentProjects(t *testing.T) {
	q, url := fifoQueue(t)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	failing := func(context.Context) ([]int64, error) { return nil, errors.New("table not found") }
	plan, err := NewPlanner(PlanOptions{Queue: q, QueueURL: url, Place: parity, Recent: failing, Log: log}).Plan(t.Context(), PlanInput{Projects: []int64{1, 2}}, time.Now())
	if err != nil || plan.Projects != 2 || !strings.Contains(plan.RecentError, "table not found") {
		t.Fatalf("%v %+v", err, plan)
	}
	if len(received(t, q, url)) != 2 {
		t.Error("the configured projects were not sent")
	}
	_, err = NewPlanner(PlanOptions{Queue: q, QueueURL: url + "-missing.fifo", Place: parity, Log: log}).Plan(t.Context(), PlanInput{Projects: []int64{1}}, time.Now())
	if err == nil {
		t.Error("a plan sent to a missing queue succeeded")
	}
	if _, err := NewPlanner(PlanOptions{Queue: q, QueueURL: url, Place: parity, Log: log}).Handler(t.Context(), json.RawMessage(`{"projects":[-1]}`)); err == nil {
		t.Error("a plan of project -1 was accepted")
	}
}

func message(id, arn, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, EventSourceARN: arn, Body: body, Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
}

// TestWorkerReportsFailedBatches: a batch is done with when it is warmed,
// or fails for good (a project without data); it is handed out again when
// Cube could not be reached, and when it cannot be read (to reach the
// dead-letter queue). In a FIFO queue, the messages after a failed one
// are failed unread.
func TestWorkerReportsFailedBatches(t *testing.T) {
	const standard, fifo = "arn:aws:sqs:us-east-1:123456789012:warmup", "arn:aws:sqs:us-east-1:123456789012:warmup.fifo"
	tests := []struct {
		name   string
		arn    string
		bodies []string
		failed []string // message ids
		warmed []int64  // projects Cube was asked about
	}{
		{"warmed", standard, []string{`{"deployment":"a","projects":[1,2]}`}, nil, []int64{1, 2}},
		{"a project without data is not retried", standard, []string{`{"projects":[1,3]}`}, nil, []int64{1, 3}},
		{"a project without data alone is not retried", standard, []string{`{"projects":[3]}`}, nil, []int64{3}},
		{"Cube unreachable", standard, []string{`{"projects":[1]}`, `{"projects":[9]}`, `{"projects":[2]}`}, []string{"m1"}, []int64{1, 2, 9}},
		{"unreadable", standard, []string{`{"projects":"all"}`, `{"projects":[2]}`}, []string{"m0"}, []int64{2}},
		{"FIFO: the rest after a failure", fifo, []string{`{"projects":[1]}`, `{"projects":[9]}`, `{"projects":[2]}`}, []string{"m1", "m2"}, []int64{1, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeCube{missing: map[int64]bool{3: true}, down: map[int64]bool{9: true}}
			w := NewWorker(runner(f), WorkerOptions{Concurrency: 2, QueryTimeout: halfDeadline(t)})
			var ev events.SQSEvent
			for i, b := range tt.bodies {
				ev.Records = append(ev.Records, message(fmt.Sprintf("m%d", i), tt.arn, b))
			}
			resp, err := w.Handler(t.Context(), ev)
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, f := range resp.BatchItemFailures {
				failed = append(failed, f.ItemIdentifier)
			}
			if !slices.Equal(failed, tt.failed) {
				t.Errorf("failed %v, want %v", failed, tt.failed)
			}
			asked := map[int64]bool{}
			for _, r := range f.seen {
				asked[r.ProjectID] = true
			}
			if got := slices.Sorted(maps.Keys(asked)); !slices.Equal(got, tt.warmed) {
				t.Errorf("Cube was asked about %v, want %v", got, tt.warmed)
			}
		})
	}
}

func halfDeadline(t *testing.T) time.Duration {
	if d, ok := t.Deadline(); ok {
		return time.Until(d) / 2
	}
	return time.Minute
}

// TestRunWarmsFunnels: with Funnels, each project's meta is asked once, and
// each funnel cube it lists (and only such cubes, with names fit for a
// query) is warmed over the dashboards' date range.
func TestRunWarmsFunnels(t *testing.T) {
	metas := map[int64]string{
		1: `{"cubes":[{"name":"TrackedEvents","measures":[{"name":"TrackedEvents.count"}],"dimensions":[]},
			{"name":"signup","measures":[{"name":"signup.count"}],"dimensions":[{"name":"signup.step"},{"name":"signup.date"}]},
			{"name":"checkout","measures":[{"name":"checkout.count"}],"dimensions":[{"name":"checkout.step"},{"name":"checkout.date"}]}]}`,
		2: `{"cubes":[{"name":"x') OR 1=1 --","measures":[{"name":"x') OR 1=1 --.count"}],"dimensions":[{"name":"x') OR 1=1 --.step"},{"name":"x') OR 1=1 --.date"}]},
			{"name":"half","measures":[{"name":"half.count"}],"dimensions":[{"name":"half.step"}]}]}`,
	}
	f := &fakeCube{meta: func(p int64) string { return metas[p] }}
	sum, err := runner(f).Run(t.Context(), Input{Projects: []int64{1, 2}, Funnels: true, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	dash := len(dashboards.Queries(sum.Started))
	if sum.OK != 2*dash+2 || sum.Failed != 0 {
		t.Fatalf("ok %d failed %d, want %d ok", sum.OK, sum.Failed, 2*dash+2)
	}
	if fmt.Sprint(sum.Funnels) != fmt.Sprint([]FunnelResult{{Project: 1, Funnels: []string{"signup", "checkout"}}, {Project: 2}}) {
		t.Errorf("funnels %+v", sum.Funnels)
	}
	from, to := dateRange(dashboardQueries(sum.Started))
	metaCalls := 0
	for _, req := range f.seen {
		switch {
		case req.Endpoint == cube.Meta:
			metaCalls++
		case strings.Contains(string(req.Query), ".step"):
			want, err := renewing(FunnelQuery(funnelOf(string(req.Query)), from, to).Query)
			if err != nil {
				t.Fatal(err)
			}
			if req.ProjectID != 1 || string(req.Query) != string(want) {
				t.Errorf("project %d funnel query %s, want %s", req.ProjectID, req.Query, want)
			}
		}
	}
	if metaCalls != 2 {
		t.Errorf("%d meta calls, want one per project", metaCalls)
	}
	// A meta Cube cannot answer leaves the dashboards warmed, and says so.
	f = &fakeCube{meta: func(int64) string { return "not json" }}
	sum, err = runner(f).Run(t.Context(), Input{Projects: []int64{1}, Funnels: true})
	if err != nil || sum.OK != dash || sum.Funnels[0].Error == "" || sum.Funnels[0].Retry {
		t.Errorf("%v %+v", err, sum.Funnels)
	}
}

// funnelOf is the funnel a funnel query counts.
func funnelOf(q string) string {
	var v struct{ Measures []string }
	json.Unmarshal([]byte(q), &v)
	name, _, _ := strings.Cut(v.Measures[0], ".")
	return name
}

func dashboardQueries(now time.Time) []NamedQuery {
	var qs []NamedQuery
	for _, q := range dashboards.Queries(now) {
		qs = append(qs, NamedQuery{Name: q.Name, Query: q.Query})
	}
	return qs
}

func TestFunnelQueryShape(t *testing.T) {
	q := FunnelQuery("signup", "2026-11-26", "2026-12-03")
	want := `{"dimensions":["signup.step"],"filters":[{"member":"signup.date","operator":"inDateRange","values":["2026-11-26","2026-12-03"]}],"measures":["signup.count"]}`
	if string(q.Query) != want || q.Name != "funnel-signup" {
		t.Errorf("got %s %s, want %s", q.Name, q.Query, want)
	}
	from, to := dateRange(dashboardQueries(time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC)))
	if from != "2026-11-26" || to != "2026-12-03" {
		t.Errorf("the dashboards' range is %s to %s", from, to)
	}
}

func ExampleWorker_Handler() {
	// The worker as the queue's event source invokes it: one message, a
	// batch the planner sent. Cube (here a stand-in) answers every query.
	w := NewWorker(NewRunner(&fakeCube{}, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil), WorkerOptions{Concurrency: 4})
	resp, _ := w.Handler(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{
		MessageId:      "m-1",
		EventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:warmup.fifo",
		Body:           `{"run":"20261203T0400Z","deployment":"cube-1","projects":[1,2]}`,
	}}})
	fmt.Println("failed batches:", len(resp.BatchItemFailures))
	// Output: failed batches: 0
}

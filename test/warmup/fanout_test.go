package warmup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/motoserver"
	"productanalytics/internal/rie"
	"productanalytics/internal/stack"
	"productanalytics/shared/app"
	"productanalytics/shared/config"
	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/deploy"
	"productanalytics/shared/metrics"
	"productanalytics/shared/recent"
	"productanalytics/shared/warmup"
)

// invokeWorker hands the worker one record, as the queue's event source
// does with a batch size of 1, and settles it as the event source would.
func invokeWorker(t *testing.T, worker *rie.Emulator, q queues, recs []events.SQSMessage) events.SQSEventResponse {
	t.Helper()
	raw, err := json.Marshal(events.SQSEvent{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := worker.Invoke(ctx, raw)
	if err != nil {
		t.Fatalf("the worker: %v\n%s", err, lastLines(worker.Output()))
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("the worker answered %s: %v", out, err)
	}
	q.settle(t, recs, resp)
	return resp
}

// plan invokes the planner with the schedule's input raw.
func plan(t *testing.T, planner *rie.Emulator, raw []byte) warmup.Plan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := planner.Invoke(ctx, raw)
	if err != nil {
		t.Fatalf("the planner: %v\n%s", err, lastLines(planner.Output()))
	}
	var p warmup.Plan
	if err := json.Unmarshal(out, &p); err != nil || p.Run == "" {
		t.Fatalf("the planner answered %s: %v\n%s", out, err, lastLines(planner.Output()))
	}
	return p
}

// router is how the functions configured with vars place projects.
func router(t *testing.T, vars map[string]string) *deploy.Router {
	t.Helper()
	cfg, err := config.LoadCube(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	r, err := cfg.Router()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFanOutUnderTheEmulator runs the warm-up as deployed, on two Cube
// deployments: the schedule's input (events/warmup.json: projects 1 and 2)
// and the projects opened recently (2, whose load the API answered, and
// 3, which has no data) go through the planner's bootstrap into the FIFO
// queue, in batches per deployment; the worker's bootstrap warms each
// message; then every dashboard query of projects 1 and 2, and each funnel
// their meta lists, is answered from Cube's cache (computed during the
// warm-up).
func TestFanOutUnderTheEmulator(t *testing.T) {
	// The table of opened projects, in an emulator of its own that the
	// API, in this process, reaches through the SDK's environment.
	const table = "recently-opened"
	tables := motoserver.Start(t)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": tables.URL, "AWS_REGION": motoserver.Region, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"} {
		t.Setenv(k, v)
	}
	db := createTable(t, tables.URL, table)
	var cubeLog, out logcheck.Buffer
	// Project 1 has the demo funnel, as make run's.
	funnelsDir := filepath.Join(root, "cube", "demo", "funnels")
	s := startStackWith(t, stack.Options{DataDir: testData(t), Cubes: 2, CubeLog: &cubeLog, Env: map[string]string{"WARMUP_RECENT_TABLE": table},
		CubeEnv: []string{"CUBE_FUNNELS_DIR=" + funnelsDir}})
	q := createQueues(t, s.MotoURL, "warmup", 3)
	// Project 2 is opened: a load the API answers 200 marks it.
	if l, err := load(t.Context(), s.APIURL, 2, []byte(`{"measures":["TrackedEvents.count"]}`)); err != nil || l.status != http.StatusOK {
		t.Fatalf("project 2's load: %v %d %s", err, l.status, l.body)
	}
	// Project 3 has no data: the API never answers it 200; marked here.
	if !recent.NewMarker(db, recent.Options{Table: table}, slog.New(slog.NewJSONHandler(io.Discard, nil))).Opened(t.Context(), 3) {
		t.Fatal("project 3 could not be marked opened")
	}
	vars := stackVars(s, q, table)
	vars["AWS_ENDPOINT_URL_DYNAMODB"] = tables.URL
	raw, err := os.ReadFile(filepath.Join(root, "events", "warmup.json"))
	if err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	planner := emulate(t, "warmup", "WarmupFunction", vars, time.Minute, &out)
	p := plan(t, planner, raw)
	r := router(t, vars)
	want := map[string]int{}
	for _, id := range []int64{1, 2, 3} {
		want[r.For(id).Name]++
	}
	if p.Configured != 2 || p.Recent != 2 || p.Projects != 3 || !maps.Equal(p.Deployments, want) || p.Batches != len(want) {
		t.Fatalf("plan %+v; want projects 1, 2 configured and 2, 3 recent, placed %v, a batch per deployment", p, want)
	}

	worker := emulate(t, "warmworker", "WarmworkerFunction", vars, 5*time.Minute, &out)
	batches := map[string][]int64{}
	for range p.Batches + 1 {
		recs := q.receive(t, q.url, 1)
		if len(recs) == 0 {
			break
		}
		b, err := warmup.ParseBatch(recs[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		if group := recs[0].Attributes["MessageGroupId"]; group != b.Group(0) {
			t.Errorf("batch %+v in message group %s", b, group)
		}
		batches[b.Deployment] = b.Projects
		if resp := invokeWorker(t, worker, q, recs); len(resp.BatchItemFailures) != 0 {
			t.Errorf("the batch %+v failed: %s", b, lastLines(worker.Output()))
		}
	}
	if len(batches) != p.Batches {
		t.Fatalf("the worker took %d batches off the queue, want %d: %v", len(batches), p.Batches, batches)
	}
	for d, ps := range batches {
		for _, id := range ps {
			if r.For(id).Name != d {
				t.Errorf("project %d was warmed in a batch of %s, the API sends it to %s", id, d, r.For(id).Name)
			}
		}
	}
	warmed := time.Now()

	// Each batch's summary names its run and deployment; project 3 failed
	// (no data) without its batch being retried.
	var lines []map[string]any
	for l := range strings.SplitSeq(worker.Output(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "warm-up" {
			lines = append(lines, m)
		}
	}
	if len(lines) != p.Batches {
		t.Errorf("%d warm-up summaries in the worker's log, want one per batch", len(lines))
	}
	for _, l := range lines {
		if l["run"] != p.Run || l["deployment"] == nil || l["message_id"] == nil {
			t.Errorf("a summary without its run, deployment and message: %v", l)
		}
	}

	// The dashboards, as a viewer opens them through the API; the funnels
	// each project's meta lists, straight from its Cube with the API's
	// client.
	cubes := cubeClients(t, s, vars)
	for _, project := range []int64{1, 2} {
		fs := funnels(t, cubes, project)
		if project == 1 && !slices.Contains(fs, "install_with_docker") {
			t.Errorf("project 1's meta lists the funnels %v, not the demo funnel", fs)
		}
		t.Logf("project %d (%s): the dashboards and the funnels %v", project, r.For(project).Name, fs)
		check := func(name string, l loaded) {
			if !l.cachedBefore(warmed) || l.refresh[0].Before(started) {
				t.Errorf("project %d %s: %d, computed at %v; want answered from the warm-up's (%s to %s)", project, name, l.status, l.refresh,
					started.Format(time.TimeOnly), warmed.Format(time.TimeOnly))
			}
		}
		queries := dashboards.Queries(warmed)
		for _, dq := range queries {
			l, err := load(t.Context(), s.APIURL, project, dq.Query)
			if err != nil {
				t.Fatal(err)
			}
			check(dq.Name, l)
		}
		from, to := dashboardsRange(queries)
		for _, f := range fs {
			fq := warmup.FunnelQuery(f, from, to)
			out, err := cubes.Do(t.Context(), cube.Request{Endpoint: cube.Load, ProjectID: project, Query: fq.Query})
			if err != nil {
				t.Fatalf("project %d %s: %v", project, fq.Name, err)
			}
			check(fq.Name, cubeAnswer(t, out.Body))
		}
	}
}

// cubeClients is the API's Cube client for the deployments of vars, with
// the stack's keys.
func cubeClients(t *testing.T, s *stack.Stack, vars map[string]string) *cube.Routed {
	t.Helper()
	cfg, err := config.LoadCube(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.CubeClients(cfg, s.SecretsManager(), &metrics.Counters{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// funnels are the funnel cubes of project's meta.
func funnels(t *testing.T, c *cube.Routed, project int64) []string {
	t.Helper()
	out, err := c.Do(t.Context(), cube.Request{Endpoint: cube.Meta, ProjectID: project})
	if err != nil {
		t.Fatalf("project %d's meta: %v", project, err)
	}
	names, err := warmup.FunnelCubes(out.Body)
	if err != nil {
		t.Fatalf("project %d's meta: %v", project, err)
	}
	return names
}

// cubeAnswer reads a load answer of Cube's as load reads the API's.
func cubeAnswer(t *testing.T, body []byte) loaded {
	t.Helper()
	var a struct {
		Results []struct {
			LastRefreshTime time.Time `json:"lastRefreshTime"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("Cube's answer %s: %v", body, err)
	}
	l := loaded{status: http.StatusOK, body: body}
	for _, r := range a.Results {
		l.refresh = append(l.refresh, r.LastRefreshTime)
	}
	return l
}

// dashboardsRange is the date range of the dashboards' queries.
func dashboardsRange(qs []dashboards.Query) (from, to string) {
	for _, q := range qs {
		var v struct {
			Filters []struct {
				Operator string
				Values   []string
			}
		}
		json.Unmarshal(q.Query, &v)
		for _, f := range v.Filters {
			if f.Operator == "inDateRange" {
				return f.Values[0], f.Values[1]
			}
		}
	}
	return "", ""
}

// TestFailedBatchGoesToTheDeadLetterQueue: the worker reports the batch of
// a deployment whose Cube is unreachable as failed; the queue hands it out
// again, and after its third receive moves it to the dead-letter queue.
// The other deployment's batch is warmed and deleted.
func TestFailedBatchGoesToTheDeadLetterQueue(t *testing.T) {
	var cubeLog, out logcheck.Buffer
	s := startStack(t, testData(t), 2, &cubeLog)
	q := createQueues(t, s.MotoURL, "warmup-failing", 3)
	vars := stackVars(s, q, "")
	// The second deployment's Cube is gone: its address answers nothing.
	deps, err := deploy.Parse(vars["CUBE_DEPLOYMENTS"])
	if err != nil || len(deps) != 2 {
		t.Fatalf("the stack's deployments %q: %v", vars["CUBE_DEPLOYMENTS"], err)
	}
	deps[1].URL = "http://" + closedAddress(t)
	var spec []string
	for _, d := range deps {
		spec = append(spec, d.Name+"="+d.URL+"="+d.KeySecretID)
	}
	vars["CUBE_DEPLOYMENTS"] = strings.Join(spec, ",")
	r := router(t, vars)
	var input warmup.PlanInput
	for id := int64(1); len(input.Projects) < 2 || !slices.ContainsFunc(input.Projects, func(p int64) bool { return r.For(p).Name == deps[1].Name }) ||
		!slices.ContainsFunc(input.Projects, func(p int64) bool { return r.For(p).Name == deps[0].Name }); id++ {
		input.Projects = append(input.Projects, id)
	}
	raw, _ := json.Marshal(input)

	p := plan(t, emulate(t, "warmup", "WarmupFunction", vars, time.Minute, &out), raw)
	if p.Batches != 2 {
		t.Fatalf("plan %+v; want a batch per deployment", p)
	}
	worker := emulate(t, "warmworker", "WarmworkerFunction", vars, 5*time.Minute, &out)
	receives := map[string][]string{} // by deployment: each receive's count, and its outcome
	for range 10 {
		recs := q.receive(t, q.url, 1)
		if len(recs) == 0 {
			break
		}
		b, _ := warmup.ParseBatch(recs[0].Body)
		resp := invokeWorker(t, worker, q, recs)
		receives[b.Deployment] = append(receives[b.Deployment], fmt.Sprintf("%s:%d", recs[0].Attributes["ApproximateReceiveCount"], len(resp.BatchItemFailures)))
	}
	want := map[string][]string{deps[0].Name: {"1:0"}, deps[1].Name: {"1:1", "2:1", "3:1"}}
	if !maps.EqualFunc(receives, want, slices.Equal) {
		t.Errorf("receives (count:failures) %v, want %v", receives, want)
	}
	dead := q.receive(t, q.dlq, 10)
	if len(dead) != 1 {
		t.Fatalf("%d messages in the dead-letter queue, want the failing deployment's batch", len(dead))
	}
	if b, err := warmup.ParseBatch(dead[0].Body); err != nil || b.Deployment != deps[1].Name {
		t.Errorf("dead-lettered %+v %v; want the batch of %s", b, err, deps[1].Name)
	}
	if !strings.Contains(worker.Output(), `"msg":"warm-up batch to be retried"`) {
		t.Errorf("the worker did not log its retried batch:\n%s", lastLines(worker.Output()))
	}
}

// closedAddress is an address of this machine nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

package template_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"productanalytics/internal/samlocal"
	"productanalytics/internal/stack"
	"productanalytics/shared/access"
	"productanalytics/shared/api"
	"productanalytics/shared/cube"
	"productanalytics/shared/emf"
	"productanalytics/shared/metrics"
	"productanalytics/shared/warmup"
)

// metricRef is one metric as an alarm or a dashboard names it.
type metricRef struct {
	Namespace, Name string
	Dimensions      map[string]string
}

func (m metricRef) String() string {
	var dims []string
	for _, k := range slices.Sorted(maps.Keys(m.Dimensions)) {
		dims = append(dims, k+"="+m.Dimensions[k])
	}
	return fmt.Sprintf("%s %s{%s}", m.Namespace, m.Name, strings.Join(dims, ","))
}

// namespace is the metrics' namespace of the sample stack, as the template
// sets it for the functions.
func namespace(t *testing.T, tpl *template) string {
	t.Helper()
	res := newResolver(t, tpl, sampleParameters["hs256"])
	ns, ok := res.value(tpl.Globals.Function.Environment.Variables["METRICS_NAMESPACE"])
	if !ok || ns == "" {
		t.Fatalf("METRICS_NAMESPACE is %v; want the stack's namespace", tpl.Globals.Function.Environment.Variables["METRICS_NAMESPACE"])
	}
	return ns
}

// emitted runs the real handler and warm-up, with Cube and the caller's
// access played by fakes, through answers of every kind, and returns every
// metric their log lines carry, as CloudWatch reads them.
func emitted(t *testing.T, ns string) []emf.Datum {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	counters := &metrics.Counters{}
	rec := metrics.NewRecorder(ns, counters, log)
	h := api.NewHandler(projectAccess{}, projectCube{}, log, api.Options{Metrics: rec})
	counters.SecretFetched(nil)
	counters.SecretFetched(errors.New("throttled"))
	counters.AccessCacheLookup(true)
	counters.AccessCacheLookup(false)
	for _, e := range []cube.Endpoint{cube.Load, cube.DryRun, cube.Meta} {
		for _, project := range []int{okProject, hiddenProject, slowProject, downProject} {
			r := httptest.NewRequest("POST", fmt.Sprintf("/projects/%d/product_analytics/request/%s", project, e),
				strings.NewReader(`{"query":{"measures":["TrackedEvents.count"]}}`))
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nowhere", nil))
	w := warmup.NewRunner(projectCube{}, log, rec)
	q := []warmup.NamedQuery{{Name: "count", Query: json.RawMessage(`{"measures":["TrackedEvents.count"]}`)}}
	if _, err := w.Run(context.Background(), warmup.Input{Projects: []int64{okProject, downProject}, Queries: q}); err != nil {
		t.Fatal(err)
	}
	var out []emf.Datum
	for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		data, err := emf.Extract([]byte(line))
		if err != nil {
			t.Fatalf("%v\n%s", err, line)
		}
		out = append(out, data...)
	}
	return out
}

// The projects of the fakes: one answered, one hidden from the caller, one
// Cube is still computing, one whose Cube is unreachable.
const (
	okProject     = 1
	hiddenProject = 2
	slowProject   = 3
	downProject   = 4
)

type projectAccess struct{}

func (projectAccess) CheckProject(_ context.Context, _ http.Header, id int64) error {
	if id == hiddenProject {
		return access.ErrProjectNotFound
	}
	return nil
}

type projectCube struct{}

func (projectCube) Do(_ context.Context, req cube.Request) (*cube.Response, error) {
	switch req.ProjectID {
	case slowProject:
		return &cube.Response{Body: []byte(`{"error":"Continue wait"}`), ContinueWait: true, Polls: 30}, nil
	case downProject:
		return &cube.Response{}, &cube.Error{Kind: cube.ErrUnreachable, Err: errors.New("connection refused")}
	}
	return &cube.Response{Body: []byte(`{"results":[{"data":[{"x":"1"}]}]}`), Polls: 1}, nil
}

// emits reports whether data holds m: same namespace, name and dimensions
// (names and values).
func emits(data []emf.Datum, m metricRef) bool {
	return slices.ContainsFunc(data, func(d emf.Datum) bool {
		return d.Namespace == m.Namespace && d.Name == m.Name && maps.Equal(d.Dimensions, m.Dimensions)
	})
}

// emitsDimensions reports whether data holds metric name of namespace with
// exactly the dimension names dims, whatever their values (a SEARCH).
func emitsDimensions(data []emf.Datum, ns, name string, dims []string) bool {
	return slices.ContainsFunc(data, func(d emf.Datum) bool {
		return d.Namespace == ns && d.Name == name && slices.Equal(slices.Sorted(maps.Keys(d.Dimensions)), slices.Sorted(slices.Values(dims)))
	})
}

// sqsMetrics are the AWS/SQS metrics the alarms and dashboard may name.
var sqsMetrics = []string{"NumberOfMessagesSent", "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "ApproximateAgeOfOldestMessage"}

// lambdaMetrics are the AWS/Lambda metrics the alarms and dashboard may name.
var lambdaMetrics = []string{"Errors", "Throttles", "ConcurrentExecutions", "Duration", "Invocations"}

// checkAWSMetric checks a metric of an AWS namespace: Lambda's of a function
// of the template, API Gateway's of its HTTP API.
func checkAWSMetric(t *testing.T, where string, m metricRef, physical func(string) (string, bool)) {
	t.Helper()
	switch m.Namespace {
	case "AWS/Lambda":
		id, ok := physical(m.Dimensions["FunctionName"])
		if !slices.Contains(lambdaMetrics, m.Name) || len(m.Dimensions) != 1 || !ok || !strings.HasSuffix(id, "Function") {
			t.Errorf("%s: %s is not a Lambda metric of a function of the template", where, m)
		}
	case "AWS/SQS":
		id, ok := physical(m.Dimensions["QueueName"])
		if !slices.Contains(sqsMetrics, m.Name) || len(m.Dimensions) != 1 || !ok || !strings.HasSuffix(id, "Queue") {
			t.Errorf("%s: %s is not an SQS metric of a queue of the template", where, m)
		}
	case "AWS/ApiGateway":
		id, ok := physical(m.Dimensions["ApiId"])
		if !slices.Contains([]string{"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}, m.Name) || len(m.Dimensions) != 1 || !ok || id != "AnalyticsApi" {
			t.Errorf("%s: %s is not an API Gateway metric of the template's HTTP API", where, m)
		}
	default:
		t.Errorf("%s: %s is in a namespace neither the code's nor AWS's", where, m)
	}
}

// alarm is the part of an AWS::CloudWatch::Alarm the tests read.
type alarm struct {
	AlarmDescription   string
	AlarmActions       any
	OKActions          any
	TreatMissingData   string
	Namespace          any
	MetricName         string
	ExtendedStatistic  string
	Statistic          string
	Dimensions         []dimension
	Metrics            []alarmMetric
	Threshold          any
	ComparisonOperator string
}

type dimension struct {
	Name  string
	Value any
}

type alarmMetric struct {
	Id         string
	Expression string
	MetricStat *struct {
		Metric struct {
			Namespace  any
			MetricName string
			Dimensions []dimension
		}
		Stat string
	}
}

// alarms returns the template's alarms by logical id, with their condition.
func alarms(t *testing.T, tpl *template) (map[string]alarm, map[string]string) {
	t.Helper()
	out, conditions := map[string]alarm{}, map[string]string{}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		var a alarm
		if err := json.Unmarshal(r.Properties, &a); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		out[id] = a
		conditions[id] = r.Condition
	}
	return out, conditions
}

// statRef is a metric an alarm reads, and the statistic it reads of it.
type statRef struct {
	metric metricRef
	stat   string
}

// refs returns the metrics an alarm reads.
func (a alarm) refs(t *testing.T, res *resolver) []statRef {
	t.Helper()
	dims := func(ds []dimension) map[string]string {
		out := map[string]string{}
		for _, d := range ds {
			if name, ok := ref(d.Value); ok {
				out[d.Name] = "!Ref " + name
				continue
			}
			if att, ok := getAtt(d.Value); ok {
				out[d.Name] = "!GetAtt " + att
				continue
			}
			v, ok := res.value(d.Value)
			if !ok {
				t.Errorf("dimension %s is %v, neither text nor a !Ref", d.Name, d.Value)
			}
			out[d.Name] = v
		}
		return out
	}
	ns := func(v any) string {
		s, ok := res.value(v)
		if !ok {
			t.Errorf("namespace %v does not resolve", v)
		}
		return s
	}
	var out []statRef
	if a.MetricName != "" {
		out = append(out, statRef{metricRef{ns(a.Namespace), a.MetricName, dims(a.Dimensions)}, a.ExtendedStatistic + a.Statistic})
	}
	for _, m := range a.Metrics {
		if m.MetricStat != nil {
			out = append(out, statRef{metricRef{ns(m.MetricStat.Metric.Namespace), m.MetricStat.Metric.MetricName, dims(m.MetricStat.Metric.Dimensions)}, m.MetricStat.Stat})
		}
	}
	return out
}

// physicalIDs resolves "!Ref X" as the tests write a resource's reference,
// and "!GetAtt X.QueueName", a queue's name.
func physicalIDs(tpl *template) func(string) (string, bool) {
	return func(v string) (string, bool) {
		id, ok := strings.CutPrefix(v, "!Ref ")
		if att, isAtt := strings.CutPrefix(v, "!GetAtt "); isAtt {
			id, ok = strings.CutSuffix(att, ".QueueName")
			if r := tpl.Resources[id]; !ok || r.Type != "AWS::SQS::Queue" {
				return "", false
			}
		}
		if _, exists := tpl.Resources[id]; !ok || !exists {
			return "", false
		}
		return id, true
	}
}

// TestAlarmsNameMetricsTheCodeEmits checks each alarm against the metrics
// the handler and the warm-up put in their log lines (same namespace, name
// and dimensions) or against AWS's metrics of the template's own
// resources, that each says why it matters and notifies the optional
// topic, and that the alarms the operators need are there.
func TestAlarmsNameMetricsTheCodeEmits(t *testing.T) {
	tpl := loadTemplate(t)
	ns := namespace(t, tpl)
	data := emitted(t, ns)
	res := newResolver(t, tpl, sampleParameters["hs256"])
	all, conditions := alarms(t, tpl)
	actions := map[string]any{"Fn::If": []any{"HasAlarmTopic", []any{map[string]any{"Ref": "AlarmTopicArn"}}, map[string]any{"Ref": "AWS::NoValue"}}}
	read := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(all)) {
		a := all[id]
		if len(strings.Fields(a.AlarmDescription)) < 12 {
			t.Errorf("%s: the description %q does not say why it matters", id, a.AlarmDescription)
		}
		if fmt.Sprint(a.AlarmActions) != fmt.Sprint(actions) || fmt.Sprint(a.OKActions) != fmt.Sprint(actions) {
			t.Errorf("%s: AlarmActions %v, OKActions %v; want both the AlarmTopicArn when set", id, a.AlarmActions, a.OKActions)
		}
		if a.TreatMissingData != "notBreaching" {
			t.Errorf("%s: TreatMissingData %q; a minute without requests has no data and is no breach", id, a.TreatMissingData)
		}
		refs := a.refs(t, res)
		if len(refs) == 0 {
			t.Errorf("%s reads no metric", id)
		}
		for _, r := range refs {
			if r.metric.Namespace == ns {
				if !emits(data, r.metric) {
					t.Errorf("%s: %s is not a metric the code emits", id, r.metric)
				}
			} else {
				checkAWSMetric(t, id, r.metric, physicalIDs(tpl))
			}
			read[fmt.Sprintf("%s %s %s", conditions[id], r.metric, r.stat)] = true
		}
	}
	// The alarms the operators need, by what they read.
	want := []string{
		" " + ns + " Requests{StatusClass=5xx} Sum",
		" " + ns + " Requests{} Sum",
		" " + ns + " Latency{} p99",
		" " + ns + " WarmupQueriesFailed{} Sum",
		" AWS/Lambda Errors{FunctionName=!Ref WarmupFunction} Sum",
		" AWS/Lambda Errors{FunctionName=!Ref WarmworkerFunction} Sum",
		" AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=!GetAtt WarmupDeadLetterQueue.QueueName} Maximum",
		" AWS/SQS ApproximateAgeOfOldestMessage{QueueName=!GetAtt WarmupQueue.QueueName} Maximum",
	}
	for _, f := range []string{"LoadFunction", "DryRunFunction", "MetaFunction"} {
		for _, m := range []string{"Errors", "Throttles"} {
			want = append(want, fmt.Sprintf(" AWS/Lambda %s{FunctionName=!Ref %s} Sum", m, f))
		}
	}
	for _, w := range want {
		if !read[w] {
			t.Errorf("no alarm reads %q; they read:\n%s", w, strings.Join(slices.Sorted(maps.Keys(read)), "\n"))
		}
	}
}

// dashboard returns the dashboard's body as CloudFormation would write it
// for the sample stack: parameters, pseudo parameters and resources'
// references (written "!Ref X") substituted.
func dashboard(t *testing.T, tpl *template) map[string]any {
	t.Helper()
	var props struct {
		DashboardBody map[string]string
	}
	for id, r := range tpl.Resources {
		if r.Type == "AWS::CloudWatch::Dashboard" {
			if err := json.Unmarshal(r.Properties, &props); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
	}
	sub, ok := props.DashboardBody["Fn::Sub"]
	if !ok {
		t.Fatal("no dashboard whose body is a !Sub")
	}
	res := newResolver(t, tpl, sampleParameters["hs256"])
	body := regexp.MustCompile(`\$\{([A-Za-z0-9:.]+)\}`).ReplaceAllStringFunc(sub, func(m string) string {
		name := m[2 : len(m)-1]
		if _, isResource := tpl.Resources[name]; isResource {
			return "!Ref " + name
		}
		if res, _, isAtt := strings.Cut(name, "."); isAtt {
			if _, isResource := tpl.Resources[res]; isResource {
				return "!GetAtt " + name
			}
		}
		v, ok := res.value(map[string]any{"Ref": name})
		if !ok {
			t.Errorf("the dashboard names ${%s}, neither a parameter nor a resource", name)
		}
		return v
	})
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("the dashboard's body is not JSON: %v\n%s", err, body)
	}
	return out
}

// searchExpr reads SEARCH('{"Namespace",Dim,...} MetricName="Name"', ...).
var searchExpr = regexp.MustCompile(`^SEARCH\('\{"?([^",]+)"?((?:,[A-Za-z]+)*)\} MetricName="([A-Za-z0-9]+)"', '[A-Za-z0-9]+', [0-9]+\)$`)

// TestDashboardShowsMetricsTheCodeEmits checks that each metric of the
// dashboard is one the code emits or AWS's of the template's resources, and
// that every metric the code emits is on it.
func TestDashboardShowsMetricsTheCodeEmits(t *testing.T) {
	tpl := loadTemplate(t)
	ns := namespace(t, tpl)
	data := emitted(t, ns)
	shown := map[string]bool{}
	widgets, _ := dashboard(t, tpl)["widgets"].([]any)
	if len(widgets) == 0 {
		t.Fatal("the dashboard has no widget")
	}
	for i, w := range widgets {
		props, _ := w.(map[string]any)["properties"].(map[string]any)
		where := fmt.Sprintf("widget %d (%v)", i, props["title"])
		if props["region"] != region {
			t.Errorf("%s: region %v, want the stack's", where, props["region"])
		}
		lines, _ := props["metrics"].([]any)
		if len(lines) == 0 {
			t.Errorf("%s shows no metric", where)
		}
		for _, l := range lines {
			line, _ := l.([]any)
			if expr, ok := line[0].(map[string]any); ok {
				m := searchExpr.FindStringSubmatch(fmt.Sprint(expr["expression"]))
				if m == nil {
					t.Errorf("%s: %v is not a SEARCH this test reads", where, expr["expression"])
					continue
				}
				dims := strings.Split(strings.TrimPrefix(m[2], ","), ",")
				if m[1] != ns || !emitsDimensions(data, ns, m[3], dims) {
					t.Errorf("%s: SEARCH of %s %s by %v, not a metric the code emits", where, m[1], m[3], dims)
				}
				shown[m[3]] = true
				continue
			}
			var fields []string
			for _, f := range line {
				if s, ok := f.(string); ok {
					fields = append(fields, s)
				}
			}
			if len(fields) < 2 || len(fields)%2 != 0 {
				t.Errorf("%s: %v is not [namespace, name, dimension, value, ...]", where, line)
				continue
			}
			m := metricRef{fields[0], fields[1], map[string]string{}}
			for j := 2; j < len(fields); j += 2 {
				m.Dimensions[fields[j]] = fields[j+1]
			}
			if m.Namespace == ns {
				if !emits(data, m) {
					t.Errorf("%s: %s is not a metric the code emits", where, m)
				}
				shown[m.Name] = true
			} else {
				checkAWSMetric(t, where, m, physicalIDs(tpl))
			}
		}
	}
	for _, d := range data {
		if !shown[d.Name] {
			t.Errorf("the code emits %s, which the dashboard does not show", d.Name)
			shown[d.Name] = true
		}
	}
}

// TestLimitsProtectCube checks the HTTP API's throttling and each API
// function's reserved concurrency: set from parameters, and a reservation
// of 0 meaning none (no bound) rather than a function that never runs.
func TestLimitsProtectCube(t *testing.T) {
	tpl := loadTemplate(t)
	var api struct {
		DefaultRouteSettings map[string]any
	}
	if err := json.Unmarshal(tpl.Resources["AnalyticsApi"].Properties, &api); err != nil {
		t.Fatal(err)
	}
	for setting, param := range map[string]string{"ThrottlingRateLimit": "ApiThrottlingRateLimit", "ThrottlingBurstLimit": "ApiThrottlingBurstLimit"} {
		if name, ok := ref(api.DefaultRouteSettings[setting]); !ok || name != param {
			t.Errorf("DefaultRouteSettings.%s is %v, want !Ref %s", setting, api.DefaultRouteSettings[setting], param)
		}
		if p := tpl.Parameters[param]; p.Type != "Number" || p.Default == nil {
			t.Errorf("parameter %s: %+v; want a Number with a default", param, p)
		}
	}
	for _, f := range tpl.functions(t) {
		if _, isAPI := endpointOf[f.ID]; !isAPI {
			continue
		}
		param := strings.TrimSuffix(f.ID, "Function") + "ReservedConcurrency"
		p, ok := tpl.Parameters[param]
		if !ok || p.Type != "Number" || p.Default == nil || *p.Default == "0" {
			t.Errorf("%s: parameter %s is %+v; want a Number with a bound as default", f.ID, param, p)
			continue
		}
		cond, _ := f.Props.ReservedConcurrentExecutions.(map[string]any)["Fn::If"].([]any)
		if len(cond) != 3 {
			t.Errorf("%s: ReservedConcurrentExecutions is %v; want !If [<condition>, !Ref %s, !Ref AWS::NoValue]", f.ID, f.Props.ReservedConcurrentExecutions, param)
			continue
		}
		if name, ok := ref(cond[1]); !ok || name != param {
			t.Errorf("%s: ReservedConcurrentExecutions takes %v, want !Ref %s", f.ID, cond[1], param)
		}
		if name, ok := ref(cond[2]); !ok || name != "AWS::NoValue" {
			t.Errorf("%s: without a reservation %v, want none (AWS::NoValue)", f.ID, cond[2])
		}
		want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": param}, "0"}}}}
		if got := tpl.Conditions[fmt.Sprint(cond[0])]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: condition %v is %v, want %s not 0", f.ID, cond[0], got, param)
		}
	}
}

// TestLogsAreKeptAndJoinable checks that every log group has the retention
// parameter, that each function logs to one, and that API Gateway's access
// log is JSON with the ids that join it to the functions' lines, and no
// header (no caller token).
func TestLogsAreKeptAndJoinable(t *testing.T) {
	tpl := loadTemplate(t)
	groups := map[string]bool{}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Logs::LogGroup" {
			continue
		}
		var p struct{ RetentionInDays any }
		json.Unmarshal(r.Properties, &p)
		if name, ok := ref(p.RetentionInDays); !ok || name != "LogRetentionDays" {
			t.Errorf("%s: RetentionInDays %v, want !Ref LogRetentionDays", id, p.RetentionInDays)
		}
		groups[id] = true
	}
	for _, f := range tpl.functions(t) {
		if name, ok := ref(f.Props.LoggingConfig["LogGroup"]); !ok || !groups[name] {
			t.Errorf("%s: LoggingConfig.LogGroup %v, want !Ref of a log group of the template", f.ID, f.Props.LoggingConfig["LogGroup"])
		}
		if f.Props.Tracing != "Active" {
			t.Errorf("%s: Tracing %q, want Active", f.ID, f.Props.Tracing)
		}
	}
	var api struct {
		AccessLogSettings struct {
			DestinationArn map[string][]string
			Format         string
		}
	}
	if err := json.Unmarshal(tpl.Resources["AnalyticsApi"].Properties, &api); err != nil {
		t.Fatal(err)
	}
	if dest := api.AccessLogSettings.DestinationArn["Fn::GetAtt"]; len(dest) != 2 || !groups[dest[0]] || dest[1] != "Arn" {
		t.Errorf("AccessLogSettings.DestinationArn %v, want !GetAtt <log group>.Arn", api.AccessLogSettings.DestinationArn)
	}
	var format map[string]string
	if err := json.Unmarshal([]byte(api.AccessLogSettings.Format), &format); err != nil {
		t.Fatalf("the access log's format is not JSON: %v\n%s", err, api.AccessLogSettings.Format)
	}
	for k, want := range map[string]string{"requestId": "$context.requestId", "integrationRequestId": "$context.integration.requestId", "status": "$context.status"} {
		if format[k] != want {
			t.Errorf("access log %s is %q, want %q", k, format[k], want)
		}
	}
	if strings.Contains(api.AccessLogSettings.Format, "header") || strings.Contains(api.AccessLogSettings.Format, "authorizer") {
		t.Errorf("the access log records a header or the authorizer: %s", api.AccessLogSettings.Format)
	}
}

// TestSDKVariablesChangeNothingDeployed checks that each variable the
// template declares for the AWS SDK, empty as deployed, leaves the SDK
// calling the region's own endpoint, and that a value (as sam local's file
// sets) is the endpoint it calls.
func TestSDKVariablesChangeNothingDeployed(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL", "")
	// call makes one call of the service a variable points at, through a
	// client that sends nothing.
	calls := map[string]func(ctx context.Context, cfg aws.Config, hc roundTripper){
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": func(ctx context.Context, cfg aws.Config, hc roundTripper) {
			secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.HTTPClient, o.RetryMaxAttempts = hc, 1 }).
				GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
		},
		"AWS_ENDPOINT_URL_SQS": func(ctx context.Context, cfg aws.Config, hc roundTripper) {
			sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.HTTPClient, o.RetryMaxAttempts = hc, 1 }).
				SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("https://sqs." + region + ".amazonaws.com/123456789012/q.fifo"), MessageBody: aws.String("x")})
		},
		"AWS_ENDPOINT_URL_DYNAMODB": func(ctx context.Context, cfg aws.Config, hc roundTripper) {
			dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.HTTPClient, o.RetryMaxAttempts = hc, 1 }).
				Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("t")})
		},
	}
	hosts := map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "secretsmanager", "AWS_ENDPOINT_URL_SQS": "sqs", "AWS_ENDPOINT_URL_DYNAMODB": "dynamodb"}
	for v := range sdkVariables {
		call, ok := calls[v]
		if !ok {
			t.Errorf("sdkVariables lists %s, which this test cannot check", v)
			continue
		}
		for _, tt := range []struct{ value, wantHost string }{
			{"", hosts[v] + "." + region + ".amazonaws.com"},
			{"http://host.docker.internal:5000", "host.docker.internal:5000"},
		} {
			t.Run(v+"="+tt.value, func(t *testing.T) {
				t.Setenv(v, tt.value)
				cfg, err := awsconfig.LoadDefaultConfig(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				var host string
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				call(ctx, cfg, func(r *http.Request) (*http.Response, error) {
					host = r.URL.Host
					return nil, errors.New("not sent")
				})
				if host != tt.wantHost {
					t.Errorf("%s=%q: the SDK called %q, want %q", v, tt.value, host, tt.wantHost)
				}
			})
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) Do(r *http.Request) (*http.Response, error) { return f(r) }

// TestSAMEnvFileIsDeclared checks the file `make run` writes for sam local:
// every variable it sets is declared by the template for each function it
// sets it for (SAM CLI drops the others), and it points every function at
// the local stack.
func TestSAMEnvFileIsDeclared(t *testing.T) {
	tpl, err := samlocal.ReadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stack.Stack{CubeURL: "http://127.0.0.1:4000", MotoURL: "http://127.0.0.1:5000"}
	vars := s.FunctionEnv("host.docker.internal")
	f, err := samlocal.NewEnvFile(tpl, vars)
	if err != nil {
		t.Fatal(err)
	}
	// The stack names one Cube (CUBE_API_URL) or several (CUBE_DEPLOYMENTS):
	// what it sets, every function gets.
	want := map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://host.docker.internal:5000"}
	for _, k := range []string{"CUBE_API_URL", "CUBE_API_KEY_SECRET_ID", "CUBE_DEPLOYMENTS"} {
		if vars[k] != "" {
			want[k] = vars[k]
		}
	}
	if vars["CUBE_API_URL"] != "" && (vars["CUBE_API_URL"] != "http://host.docker.internal:4000" || vars["CUBE_API_KEY_SECRET_ID"] != stack.CubeKeySecret) {
		t.Errorf("the stack's Cube is %q, key %q; want it on host.docker.internal, with %s", vars["CUBE_API_URL"], vars["CUBE_API_KEY_SECRET_ID"], stack.CubeKeySecret)
	}
	for _, id := range tpl.Functions() {
		if u, err := tpl.Undeclared(id, f); err != nil || len(u) > 0 {
			t.Errorf("%s: the file sets %v, which the template does not declare: %v", id, u, err)
		}
		env, err := tpl.Environment(id, samlocal.Invocation{EnvVars: f, Region: samlocal.Region})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range want {
			if env[k] != want {
				t.Errorf("%s: %s is %q, want %q", id, k, env[k], want)
			}
		}
		if _, isAPI := endpointOf[id]; isAPI && env["AUTH_JWT_SECRET_ID"] != stack.CallerKeySecret {
			t.Errorf("%s: AUTH_JWT_SECRET_ID is %q, want %q", id, env["AUTH_JWT_SECRET_ID"], stack.CallerKeySecret)
		}
	}
	var sections []string
	for k := range f {
		sections = append(sections, k)
	}
	sort.Strings(sections)
	if !slices.Contains(sections, samlocal.AllFunctions) {
		t.Errorf("the file's sections are %v; want %s for what every function reads", sections, samlocal.AllFunctions)
	}
}

// Package warmup_test runs the warm-up's fan-out end to end on the local
// stack: the planner's and the worker's real bootstraps under the runtime
// interface emulator, the real AWS SDK against moto's SQS and DynamoDB, and
// real Cubes (two deployments), whose answers then come from their cache.
// BenchmarkWarmup (make bench-warmup) warms 1,000 projects over 3 Cubes.
package warmup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/motoserver"
	"productanalytics/internal/rie"
	"productanalytics/internal/samlocal"
	"productanalytics/internal/stack"
	"productanalytics/shared/recent"
)

// root is the project's root folder.
var root string

func TestMain(m *testing.M) {
	var err error
	if root, err = stack.Root("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// startStack starts a local stack of cubes Cubes over dataDir for the
// test, stopped when it ends.
func startStack(tb testing.TB, dataDir string, cubes int, cubeLog io.Writer) *stack.Stack {
	tb.Helper()
	return startStackWith(tb, stack.Options{DataDir: dataDir, Cubes: cubes, CubeLog: cubeLog})
}

// startStackWith starts a local stack of o (its Root set here) for the
// test, stopped when it ends.
func startStackWith(tb testing.TB, o stack.Options) *stack.Stack {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o.Root = root
	s, err := stack.Start(ctx, o)
	if err != nil {
		tb.Fatalf("starting the stack: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("stopping the stack: %v", err)
		}
	})
	return s
}

// testData is the demo data the stack tests share, removed when the test
// ends.
func testData(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp, data, err := stack.TestData(ctx, root, "pa-warmup-", os.Stderr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(tmp) })
	return data
}

// queues are the warm-up's queue and dead-letter queue in the stack's
// emulator, as template.yaml declares them.
type queues struct {
	sqs           *sqs.Client
	url, arn, dlq string
}

// createQueues creates a FIFO queue whose messages move to a FIFO
// dead-letter queue after maxReceives receives, with the template's
// visibility timeout.
func createQueues(tb testing.TB, motoURL, name string, maxReceives int) queues {
	return createQueuesVisible(tb, motoURL, name, maxReceives, 360)
}

// createQueuesVisible is createQueues with a visibility timeout of
// visibility seconds.
func createQueuesVisible(tb testing.TB, motoURL, name string, maxReceives, visibility int) queues {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := queues{sqs: motoserver.NewSQS(motoURL)}
	dlq, err := q.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dead.fifo"), Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		tb.Fatal(err)
	}
	q.dlq = aws.ToString(dlq.QueueUrl)
	dlqARN := queueARN(tb, q.sqs, q.dlq)
	out, err := q.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + ".fifo"), Attributes: map[string]string{
		"FifoQueue":         "true",
		"VisibilityTimeout": strconv.Itoa(visibility),
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, dlqARN, maxReceives),
	}})
	if err != nil {
		tb.Fatal(err)
	}
	q.url = aws.ToString(out.QueueUrl)
	q.arn = queueARN(tb, q.sqs, q.url)
	return q
}

func queueARN(tb testing.TB, c *sqs.Client, url string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		tb.Fatal(err)
	}
	return out.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// receive takes up to max messages off the queue as Lambda's event source
// does (hidden for the visibility timeout, with their attributes) and
// returns them as the worker's SQS records.
func (q queues) receive(tb testing.TB, url string, max int32) []events.SQSMessage {
	tb.Helper()
	return q.receiveFrom(tb, url, max, 0)
}

// receiveFrom is receive waiting up to wait seconds for a message (long
// polling).
func (q queues) receiveFrom(tb testing.TB, url string, max, wait int32) []events.SQSMessage {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := q.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: max, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		tb.Fatal(err)
	}
	var recs []events.SQSMessage
	for _, m := range out.Messages {
		recs = append(recs, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Attributes: m.Attributes, Md5OfBody: aws.ToString(m.MD5OfBody),
			EventSource: "aws:sqs", EventSourceARN: q.arn, AWSRegion: motoserver.Region,
		})
	}
	return recs
}

// settle does what Lambda's event source does with the worker's answer:
// it deletes the messages not reported failed, and makes the failed ones
// visible again at once (the queue's visibility timeout, shortened).
func (q queues) settle(tb testing.TB, recs []events.SQSMessage, resp events.SQSEventResponse) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range recs {
		var err error
		if failed[r.MessageId] {
			_, err = q.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(r.ReceiptHandle), VisibilityTimeout: 0})
		} else {
			_, err = q.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(r.ReceiptHandle)})
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// createTable creates the table of recently opened projects, as
// template.yaml declares it.
func createTable(tb testing.TB, motoURL, name string) *dynamodb.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := motoserver.NewDynamoDB(motoURL)
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          dbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String(recent.Project), AttributeType: dbtypes.ScalarAttributeTypeN}},
		KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String(recent.Project), KeyType: dbtypes.KeyTypeHash}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// functionEnv is the environment SAM CLI gives function id of
// template.yaml with the --env-vars file made of vars, as `sam local
// invoke` would run it against the local stack.
func functionEnv(tb testing.TB, id string, vars map[string]string) map[string]string {
	tb.Helper()
	tpl, err := samlocal.ReadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	f, err := samlocal.NewEnvFile(tpl, vars)
	if err != nil {
		tb.Fatal(err)
	}
	env, err := tpl.Environment(id, samlocal.Invocation{EnvVars: f, Region: motoserver.Region})
	if err != nil {
		tb.Fatal(err)
	}
	return env
}

// stackVars are the variables that point the warm-up's functions at s and
// at the queue and table in its emulator.
func stackVars(s *stack.Stack, q queues, table string) map[string]string {
	vars := maps.Clone(s.FunctionEnv(""))
	maps.Copy(vars, map[string]string{
		"AWS_ENDPOINT_URL_SQS":      s.MotoURL,
		"AWS_ENDPOINT_URL_DYNAMODB": s.MotoURL,
		"WARMUP_QUEUE_URL":          q.url,
		"WARMUP_RECENT_TABLE":       table,
	})
	return vars
}

// emulate runs the bootstrap of package pkg (functions/<pkg>) under the
// runtime interface emulator as function id, with vars as its --env-vars.
func emulate(tb testing.TB, pkg, id string, vars map[string]string, timeout time.Duration, out io.Writer) *rie.Emulator {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := tb.TempDir()
	bin, err := rie.BuildBootstrap(ctx, root, "./functions/"+pkg, dir)
	if err != nil {
		tb.Fatal(err)
	}
	return rie.Start(tb, rie.Options{Bootstrap: bin, Env: rie.EnvFromMap(functionEnv(tb, id, vars)), FunctionName: id, Timeout: timeout, Output: out})
}

// loaded is what a load through the API answered.
type loaded struct {
	status  int
	body    []byte
	refresh []time.Time // each result's lastRefreshTime
	sent    time.Time
	took    time.Duration
}

// load sends a dashboard query of project through the API.
func load(ctx context.Context, apiURL string, project int64, query []byte) (loaded, error) {
	body, _ := json.Marshal(map[string]json.RawMessage{"query": query})
	req, err := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/api/v4/projects/%d/product_analytics/request/load", apiURL, project), bytes.NewReader(body))
	if err != nil {
		return loaded{}, err
	}
	req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, project))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", fmt.Sprintf("warmup-test-%d", requestIDs.Add(1)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return loaded{}, fmt.Errorf("loading project %d: %w", project, err)
	}
	defer resp.Body.Close()
	l := loaded{status: resp.StatusCode, sent: start}
	if l.body, err = io.ReadAll(resp.Body); err != nil {
		return l, fmt.Errorf("reading project %d's answer: %w", project, err)
	}
	l.took = time.Since(start)
	var a struct {
		Results []struct {
			LastRefreshTime time.Time `json:"lastRefreshTime"`
		} `json:"results"`
	}
	if l.status == http.StatusOK {
		if err := json.Unmarshal(l.body, &a); err != nil {
			return l, fmt.Errorf("project %d's answer: %w", project, err)
		}
		for _, r := range a.Results {
			l.refresh = append(l.refresh, r.LastRefreshTime)
		}
	}
	return l, nil
}

// requestIDs numbers the requests the tests send.
var requestIDs atomic.Int64

// cachedBefore reports whether every result of l was computed before t:
// Cube answered it from its cache.
func (l loaded) cachedBefore(t time.Time) bool {
	if l.status != http.StatusOK || len(l.refresh) == 0 || strings.Contains(string(l.body), "Continue wait") {
		return false
	}
	for _, r := range l.refresh {
		if r.IsZero() || !r.Before(t) {
			return false
		}
	}
	return true
}

// lastLines is the end of a log, for a failure's message.
func lastLines(s string) string { return logcheck.LastLines(s, 30) }

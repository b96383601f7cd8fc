package recent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"productanalytics/internal/motoserver"
)

// table creates the marks' table, as the template declares it, in a
// moto_server for the test.
func table(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	db := motoserver.Start(t).DynamoDB()
	const name = "recently-opened"
	_, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(Project), AttributeType: types.ScalarAttributeTypeN}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(Project), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, name
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestMarksAtMostOncePerPeriod: one process writes a project's mark once
// per Every; a second process finds it written (the conditional write
// refuses) until Every has passed; List returns the projects opened since
// a time.
func TestMarksAtMostOncePerPeriod(t *testing.T) {
	db, name := table(t)
	c := &clock{now: time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	a := NewMarker(db, Options{Table: name, Every: 10 * time.Minute, Now: c.Now}, log)
	b := NewMarker(db, Options{Table: name, Every: 10 * time.Minute, Now: c.Now}, log)
	steps := []struct {
		name    string
		m       *Marker
		project int64
		after   time.Duration
		wrote   bool
	}{
		{"first mark", a, 1, 0, true},
		{"same process again", a, 1, time.Minute, false},
		{"another process within the period", b, 1, time.Minute, false},
		{"another project", b, 2, 0, true},
		{"past the period", b, 1, 10 * time.Minute, true},
		{"the first process past the period", a, 1, 11 * time.Minute, true},
		{"not a project", a, 0, 0, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			c.Add(s.after)
			if got := s.m.Opened(t.Context(), s.project); got != s.wrote {
				t.Errorf("wrote %v, want %v", got, s.wrote)
			}
		})
	}
	out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(name), Key: map[string]types.AttributeValue{Project: number(1)}})
	if err != nil {
		t.Fatal(err)
	}
	opened, expires := out.Item[OpenedAt].(*types.AttributeValueMemberN), out.Item[ExpiresAt].(*types.AttributeValueMemberN)
	if want := fmt.Sprint(c.Now().Unix()); opened.Value != want || expires.Value != fmt.Sprint(c.Now().Add(DefaultKeep).Unix()) {
		t.Errorf("project 1's item %v %v, want opened at %s, expiring %s later", opened.Value, expires.Value, want, DefaultKeep)
	}
	got, err := List(t.Context(), db, name, c.Now().Add(-time.Minute), time.Second*10)
	if err != nil || !slices.Equal(got, []int64{1}) {
		t.Errorf("opened in the last minute: %v %v, want [1]", got, err)
	}
	got, err = List(t.Context(), db, name, c.Now().Add(-time.Hour), time.Second*10)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("opened in the last hour: %v %v, want [1 2]", got, err)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %s", logs.String())
	}
	// A table that does not exist: the mark fails, is logged, and the
	// caller goes on.
	bad := NewMarker(db, Options{Table: "missing", Now: c.Now}, log)
	if bad.Opened(t.Context(), 1) || !strings.Contains(logs.String(), "marking a project as opened failed") {
		t.Errorf("a failed write: %s", logs.String())
	}
	if _, err := List(t.Context(), db, "missing", c.Now(), time.Second*10); err == nil {
		t.Error("listing a missing table succeeded")
	}
}

// TestListReadsEveryPage lists more marks than one page of a scan holds.
func TestListReadsEveryPage(t *testing.T) {
	db, name := table(t)
	now := time.Now()
	big := strings.Repeat("x", 200<<10) // moto pages at 1 MB, as DynamoDB does
	for p := int64(1); p <= 12; p++ {
		_, err := db.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(name), Item: map[string]types.AttributeValue{
			Project: number(p), OpenedAt: number(now.Unix()), "pad": &types.AttributeValueMemberS{Value: big},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := List(t.Context(), db, name, now.Add(-time.Minute), 10*time.Second)
	if err != nil || len(got) != 12 {
		t.Errorf("listed %v %v, want 12 projects", got, err)
	}
}

// TestHandlerMarksLoadsAnswered200: only a load the API answered 200 marks
// its project; refusals and other endpoints do not.
func TestHandlerMarksLoadsAnswered200(t *testing.T) {
	db, name := table(t)
	m := NewMarker(db, Options{Table: name}, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/projects/7/") {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"404 Project Not Found"}`))
			return
		}
		w.Write([]byte(`{"results":[]}`))
	})
	h := m.Handler(api)
	for _, path := range []string{
		"/api/v4/projects/1/product_analytics/request/load",
		"/projects/2/product_analytics/request/load",
		"/projects/3/product_analytics/request/meta",
		"/projects/7/product_analytics/request/load",
		"/projects/01/product_analytics/request/load",
		"/projects/4/product_analytics/request/load/x",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", path, nil))
		if w.Code == 0 || w.Body.Len() == 0 {
			t.Errorf("%s: the API's answer did not pass: %d", path, w.Code)
		}
	}
	got, err := List(context.Background(), db, name, time.Now().Add(-time.Minute), 10*time.Second)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("marked %v %v, want [1 2]", got, err)
	}
}

func ExampleMarker_Handler() {
	// The API's handler, wrapped: each load answered 200 marks its project
	// in the table, at most once per project per ten minutes.
	var db Putter // dynamodb.NewFromConfig(awsCfg)
	api := http.NotFoundHandler()
	m := NewMarker(db, Options{Table: "product-analytics-recently-opened", Every: 10 * time.Minute}, slog.Default())
	http.Handle("/", m.Handler(api))
}

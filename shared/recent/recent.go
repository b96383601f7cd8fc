// Package recent remembers which projects' dashboards were opened lately,
// so that the warm-up warms those and not only a configured list.
//
// The API marks a project when it answers one of its loads: one DynamoDB
// item per project (project, openedAt, expiresAt as the table's TTL),
// written at most once per project per Options.Every by each process (a
// map in memory), and at most once per Every across processes (a
// conditional write). The warm-up lists the items opened since a time with
// one paginated Scan: the table holds one small item per project opened
// within the TTL, so a scan reads about 40 bytes per such project.
package recent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"productanalytics/shared/trace"
)

// The table's attributes. The table's partition key is Project (a number);
// its TTL attribute is ExpiresAt.
const (
	Project   = "project"
	OpenedAt  = "openedAt"
	ExpiresAt = "expiresAt"
)

// The defaults of Options.
const (
	DefaultEvery   = 10 * time.Minute
	DefaultKeep    = 7 * 24 * time.Hour
	DefaultTimeout = time.Second
	// DefaultRemembered bounds the projects a process remembers having
	// marked; past it, it forgets them all and marks each again once.
	DefaultRemembered = 100000
)

// Putter is what a Marker needs of a DynamoDB client.
type Putter interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// Scanner is what List needs of a DynamoDB client.
type Scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Options configure a Marker.
type Options struct {
	// Table is the DynamoDB table's name.
	Table string
	// Every is how often at most a project is marked (default 10m).
	Every time.Duration
	// Keep is how long a mark lives (its TTL; default 7 days).
	Keep time.Duration
	// Timeout bounds one write (default 1s).
	Timeout time.Duration
	// Remembered bounds the projects remembered in memory
	// (default DefaultRemembered).
	Remembered int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Marker marks projects as opened.
type Marker struct {
	db  Putter
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	marked map[int64]time.Time
}

// NewMarker returns a Marker writing to db; log receives the failed writes.
func NewMarker(db Putter, o Options, log *slog.Logger) *Marker {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Remembered <= 0 {
		o.Remembered = DefaultRemembered
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Marker{db: db, o: o, log: log, marked: map[int64]time.Time{}}
}

// due reports whether project is to be marked now, and if so remembers it
// as marked.
func (m *Marker) due(project int64, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.marked[project]; ok && now.Sub(last) < m.o.Every {
		return false
	}
	if len(m.marked) >= m.o.Remembered {
		clear(m.marked)
	}
	m.marked[project] = now
	return true
}

// Opened marks project as opened now, unless this process did within
// Every. It reports whether it wrote. A failed write is logged and not
// retried before Every: it costs that project one cold dashboard at most.
func (m *Marker) Opened(ctx context.Context, project int64) bool {
	now := m.o.Now()
	if project <= 0 || !m.due(project, now) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, m.o.Timeout)
	defer cancel()
	_, err := m.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(m.o.Table),
		Item: map[string]types.AttributeValue{
			Project:   number(project),
			OpenedAt:  number(now.Unix()),
			ExpiresAt: number(now.Add(m.o.Keep).Unix()),
		},
		// Another process marked it within Every: nothing to write.
		ConditionExpression:       aws.String("attribute_not_exists(#p) OR #o < :due"),
		ExpressionAttributeNames:  map[string]string{"#p": Project, "#o": OpenedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":due": number(now.Add(-m.o.Every).Unix())},
	})
	var done *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true
	case errors.As(err, &done):
		return false
	default:
		m.log.LogAttrs(ctx, slog.LevelWarn, "marking a project as opened failed", append(trace.Attrs(ctx),
			slog.Int64("project_id", project), slog.String("reason", err.Error()))...)
		return false
	}
}

// loadPath is a load's path, as GitLab's API and the short form serve it.
var loadPath = regexp.MustCompile(`^(?:/api/v4)?/projects/([1-9][0-9]{0,18})/product_analytics/request/load$`)

// Handler wraps the API's handler: each load it answers 200 marks its
// project, after the answer is written. Refused loads mark nothing, so
// that no caller can have projects it may not read warmed.
func (m *Marker) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		match := loadPath.FindStringSubmatch(r.URL.Path)
		if match == nil {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusOK {
			id, err := strconv.ParseInt(match[1], 10, 64)
			if err == nil {
				// The request may be gone (the caller left): the mark
				// is still worth writing, within its own timeout.
				m.Opened(context.WithoutCancel(r.Context()), id)
			}
		}
	})
}

// statusWriter records the status an answer was written with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer's Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// List returns the projects of table opened at or after since, reading the
// whole table with eventually consistent reads (half the cost of strong
// ones: a mark missed by a second warms on the next run). timeout bounds
// each page.
func List(ctx context.Context, db Scanner, table string, since time.Time, timeout time.Duration) ([]int64, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(table),
		ProjectionExpression:      aws.String("#p"),
		FilterExpression:          aws.String("#o >= :since"),
		ExpressionAttributeNames:  map[string]string{"#p": Project, "#o": OpenedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":since": number(since.Unix())},
	}
	var out []int64
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		page, err := db.Scan(cctx, in)
		cancel()
		if err != nil {
			return out, fmt.Errorf("scanning %s: %w", table, err)
		}
		for _, item := range page.Items {
			n, ok := item[Project].(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			if id, err := strconv.ParseInt(n.Value, 10, 64); err == nil && id > 0 {
				out = append(out, id)
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

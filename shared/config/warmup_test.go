package config

import (
	"maps"
	"strings"
	"testing"
	"time"
)

func TestLoadWarmupPlan(t *testing.T) {
	queue := "https://sqs.eu-west-1.amazonaws.com/123456789012/product-analytics-api-WarmupQueue-1A2B3C4D5E6F.fifo"
	tests := []struct {
		name   string
		change map[string]string
		want   Warmup
		errs   []string
	}{
		{"defaults", map[string]string{"WARMUP_QUEUE_URL": queue},
			Warmup{QueueURL: queue, RecentWithin: 24 * time.Hour, BatchProjects: 10, Slots: 2}, nil},
		{"set", map[string]string{"WARMUP_QUEUE_URL": "http://127.0.0.1:5000/123456789012/warmup.fifo", "WARMUP_RECENT_TABLE": "recently-opened",
			"WARMUP_RECENT_WITHIN": "2h", "WARMUP_BATCH_PROJECTS": "25", "WARMUP_SLOTS": "3"},
			Warmup{QueueURL: "http://127.0.0.1:5000/123456789012/warmup.fifo", RecentTable: "recently-opened", RecentWithin: 2 * time.Hour, BatchProjects: 25, Slots: 3}, nil},
		{"no queue", nil, Warmup{}, []string{"WARMUP_QUEUE_URL: is required"}},
		{"not a queue", map[string]string{"WARMUP_QUEUE_URL": "warmup"}, Warmup{}, []string{"WARMUP_QUEUE_URL: is not an SQS queue URL"}},
		{"bad values", map[string]string{"WARMUP_QUEUE_URL": queue, "WARMUP_RECENT_TABLE": "a b", "WARMUP_BATCH_PROJECTS": "500", "WARMUP_SLOTS": "0", "WARMUP_RECENT_WITHIN": "soon"},
			Warmup{}, []string{"WARMUP_RECENT_TABLE", "WARMUP_BATCH_PROJECTS", "WARMUP_SLOTS", "WARMUP_RECENT_WITHIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base()
			maps.Copy(e, tt.change)
			_, w, err := LoadWarmupPlan(env(e))
			if len(tt.errs) == 0 {
				if err != nil || w != tt.want {
					t.Errorf("got %+v, %v; want %+v", w, err, tt.want)
				}
				return
			}
			for _, want := range tt.errs {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v; want it to name %q", err, want)
				}
			}
		})
	}
}

func TestLoadWarmupWorkerAndRecent(t *testing.T) {
	_, w, err := LoadWarmupWorker(env(base()))
	if err != nil || w.QueryConcurrency != DefaultWarmupQueryConcurrency || w.QueryTimeout != DefaultWarmupQueryTimeout {
		t.Errorf("worker defaults %+v, %v", w, err)
	}
	e := base()
	e["WARMUP_QUERY_CONCURRENCY"] = "64"
	if _, _, err := LoadWarmupWorker(env(e)); err == nil || !strings.Contains(err.Error(), "WARMUP_QUERY_CONCURRENCY") {
		t.Errorf("64 queries at once: %v", err)
	}
	r, err := LoadRecent(env(map[string]string{}))
	if err != nil || r.Table != "" || r.Every != DefaultRecentEvery {
		t.Errorf("recent defaults %+v, %v: want no table (nothing marked)", r, err)
	}
	r, err = LoadRecent(env(map[string]string{"WARMUP_RECENT_TABLE": "t-1", "WARMUP_RECENT_EVERY": "30s"}))
	if err == nil || !strings.Contains(err.Error(), "WARMUP_RECENT_EVERY") {
		t.Errorf("marks every 30s: %+v, %v", r, err)
	}
}

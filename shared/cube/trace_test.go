package cube

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"productanalytics/shared/trace"
)

// TestDoForwardsTheTraceHeader checks that every send to Cube, polls
// included, carries the request's trace header, and none when it has none.
func TestDoForwardsTheTraceHeader(t *testing.T) {
	const header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	tests := []struct {
		name string
		ctx  context.Context
		want []string
	}{
		{"a request's trace", trace.NewContext(context.Background(), header), []string{header, header}},
		{"no trace", context.Background(), []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if v := r.Header.Values(trace.Header); len(v) > 1 {
					t.Errorf("%s sent %d times", trace.Header, len(v))
				}
				got = append(got, r.Header.Get(trace.Header))
				if len(got) == 1 {
					io.WriteString(w, continueWait)
					return
				}
				io.WriteString(w, testAnswer)
			}))
			defer srv.Close()
			c := NewClient(&fakeKeys{key: "k"}, Options{BaseURL: srv.URL, Issuer: testIssuer})
			res, err := c.Do(tt.ctx, Request{Endpoint: Load, ProjectID: 1, Query: json.RawMessage(testQuery), RequestID: "r-1"})
			if err != nil || res.Polls != 1 {
				t.Fatalf("got %+v, %v; want an answer after one poll", res, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(got, tt.want) {
				t.Errorf("got trace headers %q, want %q", got, tt.want)
			}
		})
	}
}

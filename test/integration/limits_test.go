package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/api"
)

// TestLimitsOnTheStack runs a stack as `make run` does with CORS on, a
// per-project limit of 2 requests in flight, and Cube's slow test cube, and
// checks on it, through the local server: a project past its limit is
// refused 429 with Retry-After while another project is served; a client
// that half-closes its connection is a 499 logged at info, not a 5xx; and
// CORS's Vary: Origin survives the API's own Vary.
func TestLimitsOnTheStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const origin = "https://dashboards.example.com"
	logs, cubeLog := &logcheck.Buffer{}, &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, Log: logs, CubeLog: cubeLog,
		ContinueWait: continueWt, TestModel: true, SlowQuery: 3 * time.Second,
		CORSAllowOrigins: []string{origin},
		Env:              map[string]string{"MAX_IN_FLIGHT_PER_PROJECT": "2"},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, cubeLog.String())
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := logcheck.Leak(logs.String()+cubeLog.String(), stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
			t.Error(err)
		}
	}()
	loadPath := func(p int64) string { return fmt.Sprintf("/api/v4/projects/%d/product_analytics/request/load", p) }
	post := func(id string, project int64, query string, header http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.APIURL+loadPath(project), strings.NewReader(`{"query":`+query+`}`))
		req.Header = header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, 1, 2))
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			return nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// slow is a query of the slow cube Cube has not answered before.
	slow := func(tag string) string {
		return fmt.Sprintf(`{"measures":["SlowEvents.count"],"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["%s-%d"]}]}`, tag, time.Now().UnixNano())
	}
	// inCube waits until Cube has logged the request sent with id: the API
	// counts a request in flight before it calls Cube.
	inCube := func(id string) {
		wait.Until(t, "Cube's log of request "+id, func() bool {
			return strings.Contains(cubeLog.String(), `"requestId":"`+id)
		})
	}

	t.Run("a project past its limit", func(t *testing.T) {
		var wg sync.WaitGroup
		held := make([]int, 2)
		for i := range held {
			wg.Go(func() {
				if resp, body := post(fmt.Sprintf("held-%d", i), 1, slow("held"), nil); resp != nil {
					held[i] = resp.StatusCode
					if resp.StatusCode != 200 {
						t.Errorf("held request %d: %d %s", i, resp.StatusCode, body)
					}
				}
			})
		}
		inCube("held-0")
		inCube("held-1")
		resp, body := post("third", 1, `{"measures":["TrackedEvents.count"]}`, nil)
		if resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" ||
			!strings.Contains(body, `"message":"429 Too Many Requests: this project already has 2 requests in progress`) {
			t.Errorf("the project's third request: %v %s; want 429 with Retry-After: 1", resp.Header, body)
		}
		if resp, body := post("other-project", 2, `{"measures":["TrackedEvents.count"]}`, nil); resp == nil || resp.StatusCode != 200 {
			t.Errorf("another project meanwhile: %s", body)
		}
		line := lineOf(t, logs, "third")
		if line["status"] != 429.0 || line["level"] != "INFO" || line["Reason"] != "ProjectBusy" {
			t.Errorf("the refusal's log line: %v", line)
		}
		wg.Wait()
		if resp, body := post("after", 1, `{"measures":["TrackedEvents.count"]}`, nil); resp == nil || resp.StatusCode != 200 {
			t.Errorf("the project once its requests are answered: %s", body)
		}
	})

	t.Run("a client that half-closes", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.APIURL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := `{"query":` + slow("half") + `}`
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nX-Request-Id: half-closed\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", loadPath(1), stack.Token(time.Hour, 1), len(body), body)
		inCube("half-closed")
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer after a half-close: %v", err)
		}
		answer, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != api.StatusClientClosedRequest {
			t.Errorf("got %d %s; want 499", resp.StatusCode, answer)
		}
		line := lineOf(t, logs, "half-closed")
		if line["status"] != 499.0 || line["level"] != "INFO" || line["StatusClass"] != "4xx" || line["Reason"] != "ClientGone" {
			t.Errorf("log line %v; want 499 at INFO, a 4xx of reason ClientGone", line)
		}
	})

	t.Run("Vary with CORS", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			status      int
		}{
			{"an answer", `{"measures":["TrackedEvents.count"]}`, 200},
			{"a refusal", `{"measures":["nope"]}`, 400},
		} {
			resp, body := post("vary-"+strings.ReplaceAll(tc.name, " ", "-"), 1, tc.query, http.Header{"Origin": {origin}, "Accept-Encoding": {"gzip"}})
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("%s: %s", tc.name, body)
			}
			var vary []string
			for _, v := range resp.Header.Values("Vary") {
				for f := range strings.SplitSeq(v, ",") {
					vary = append(vary, strings.TrimSpace(f))
				}
			}
			slices.Sort(vary)
			if !slices.Equal(vary, []string{"Accept-Encoding", "Origin"}) || resp.Header.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("%s: Vary %q, Access-Control-Allow-Origin %q; want Accept-Encoding and Origin, and the origin",
					tc.name, resp.Header.Values("Vary"), resp.Header.Get("Access-Control-Allow-Origin"))
			}
		}
	})
}

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/badclients"
	"productanalytics/internal/wait"
	"productanalytics/shared/access"
	"productanalytics/shared/api"
	"productanalytics/shared/cube"
)

const callerKey = "server-test-caller-key"

// noCube fails the test if the API calls Cube: every request here is
// answered before that.
type noCube struct{ t *testing.T }

func (c noCube) Do(context.Context, cube.Request) (*cube.Response, error) {
	c.t.Error("the API called Cube")
	return nil, cube.ErrUnreachable
}

// serve starts the API's real handler, with caller tokens signed with
// callerKey, behind a server of New(o), and returns its address.
func serve(t *testing.T, o Options) string {
	t.Helper()
	checker := access.NewJWT(access.JWTOptions{Key: func(context.Context) (string, error) { return callerKey, nil }})
	h := api.NewHandler(checker, noCube{t}, slog.New(slog.NewJSONHandler(io.Discard, nil)), api.Options{})
	srv := New(h, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func token(project int) string {
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"projects": []int{project}, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(callerKey))
	return s
}

// head is a request line and headers for the API's load call.
func head(method, path, auth string, length int) string {
	h := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, length)
	if auth != "" {
		h += "Authorization: Bearer " + auth + "\r\n"
	}
	return h
}

const loadPath = "/api/v4/projects/1/product_analytics/request/load"

func message(t *testing.T, body []byte) string {
	t.Helper()
	var m struct{ Message string }
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("answer %q is not GitLab's {\"message\": ...}: %v", body, err)
	}
	return m.Message
}

// TestRefusalsDoNotWaitForTheBody sends requests whose bodies never finish
// arriving to a server whose read bound is far away: a refusal that needs
// no body must come at once, and say that the connection closes.
func TestRefusalsDoNotWaitForTheBody(t *testing.T) {
	addr := serve(t, Options{ReadTimeout: 10 * time.Minute})
	tests := []struct {
		name, method, path, auth string
		status                   int
		message                  string
	}{
		{"no credentials", "POST", loadPath, "", 401, "401 Unauthorized"},
		{"another project", "POST", loadPath, token(2), 404, "404 Project Not Found"},
		{"a method the route does not take", "PUT", loadPath, token(1), 405, "405 Method Not Allowed"},
		{"no such route", "POST", "/api/v4/projects/1/elsewhere", token(1), 404, "404 Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := badclients.Trickle(addr, head(tt.method, tt.path, tt.auth, 100000), 50*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			var resp *http.Response
			var body []byte
			wait.Until(t, "the answer while the body is still arriving", func() bool {
				resp, body = tr.Answer()
				return resp != nil
			})
			if resp.StatusCode != tt.status || message(t, body) != tt.message {
				t.Errorf("got %d %s; want %d %q", resp.StatusCode, body, tt.status, tt.message)
			}
			if !resp.Close {
				t.Errorf("got Connection %q; want close, the body being unread", resp.Header.Get("Connection"))
			}
		})
	}
}

// TestSlowSendersAreCutOff opens 50 connections that send their bodies a
// byte at a time, refused ones and ones the API reads: the server must
// close every one once the read bound has passed.
func TestSlowSendersAreCutOff(t *testing.T) {
	const bound = time.Second
	addr := serve(t, Options{ReadTimeout: bound})
	var trs []*badclients.Trickler
	for i := range 50 {
		auth := ""
		if i%2 == 0 {
			auth = token(1)
		}
		tr, err := badclients.Trickle(addr, head("POST", loadPath, auth, 100000), 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		trs = append(trs, tr)
	}
	start := time.Now()
	var open int
	// At a byte every 100 ms, the bodies would take nearly three hours.
	wait.Until(t, fmt.Sprintf("the server to close all 50 slow connections (read bound %s)", bound), func() bool {
		open = 0
		for _, tr := range trs {
			select {
			case <-tr.Closed():
			default:
				open++
			}
		}
		return open == 0
	})
	t.Logf("all 50 closed %s after the last connected, read bound %s", time.Since(start).Round(10*time.Millisecond), bound)
	for i, tr := range trs {
		resp, body := tr.Answer()
		switch {
		case resp == nil:
			t.Errorf("connection %d: closed without an answer", i)
		case i%2 == 1 && resp.StatusCode != 401:
			t.Errorf("connection %d without credentials: got %d %s; want 401", i, resp.StatusCode, body)
		case i%2 == 0 && resp.StatusCode != 400:
			// The API was reading the body when the bound passed.
			t.Errorf("connection %d with credentials: got %d %s; want 400", i, resp.StatusCode, body)
		}
	}
}

// TestWholeBodyBeforeTheAnswer posts with Python's urllib, which sends the
// whole body before it reads a byte of the answer: a refusal must reach it
// rather than a broken connection.
func TestWholeBodyBeforeTheAnswer(t *testing.T) {
	addr := serve(t, Options{})
	padded := func(size int) []byte {
		return []byte(`{"query":{"measures":["TrackedEvents.count"],"limit":0},"pad":"` + strings.Repeat("x", size) + `"}`)
	}
	tests := []struct {
		name    string
		auth    string
		body    []byte
		status  int
		message string
	}{
		{"2 MB, over the API's 1 MB", token(1), padded(2 << 20), 413, "413 Request Entity Too Large"},
		{"9 MB, under API Gateway's 10 MB", token(1), padded(9 << 20), 413, "413 Request Entity Too Large"},
		{"2 MB without credentials", "", padded(2 << 20), 401, "401 Unauthorized"},
		{"2 MB for another project", token(2), padded(2 << 20), 404, "404 Project Not Found"},
		{"500 KB, read whole", token(1), padded(500 << 10), 400, "query.limit is 0, outside 1 to 50000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{"Content-Type": "application/json"}
			if tt.auth != "" {
				header["Authorization"] = "Bearer " + tt.auth
			}
			status, body, err := badclients.PythonPost(t.Context(), "http://"+addr+loadPath, header, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || message(t, []byte(body)) != tt.message {
				t.Errorf("got %d %s; want %d %q", status, body, tt.status, tt.message)
			}
		})
	}
}

// TestConnectionsKeptWhenTheBodyWasRead checks that the bounds cost a
// well-behaved client nothing: a connection whose bodies the API read is
// used again, and one whose body was left unread is not.
func TestConnectionsKeptWhenTheBodyWasRead(t *testing.T) {
	addr := serve(t, Options{})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	send := func(auth string) (status int, reused bool) {
		t.Helper()
		var got httptrace.GotConnInfo
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { got = i }})
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+loadPath, strings.NewReader(`{"query":{"limit":0}}`))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, got.Reused
	}
	steps := []struct {
		name   string
		auth   string
		status int
		reused bool
	}{
		{"first", token(1), 400, false},
		{"body read: the connection is kept", token(1), 400, true},
		{"refused, body unread", "", 401, true},
		{"after the refusal: a new connection", token(1), 400, false},
	}
	for _, s := range steps {
		status, reused := send(s.auth)
		if status != s.status || reused != s.reused {
			t.Errorf("%s: got %d on a reused connection %v; want %d, %v", s.name, status, reused, s.status, s.reused)
		}
	}
}

// TestExpectContinueRefused checks that a client waiting for "100 Continue"
// before its body gets the refusal instead, and the connection ends
// without waiting for a body it was never asked for.
func TestExpectContinueRefused(t *testing.T) {
	addr := serve(t, Options{ReadTimeout: 10 * time.Minute})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%sExpect: 100-continue\r\n\r\n", head("POST", loadPath, "", 5000))
	conn.SetReadDeadline(time.Now().Add(wait.Deadline))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || message(t, body) != "401 Unauthorized" {
		t.Fatalf("got %d %s; want 401 without a 100 Continue", resp.StatusCode, body)
	}
	var closed atomic.Bool
	if _, err := br.ReadByte(); err != nil {
		closed.Store(true)
	}
	if !closed.Load() {
		t.Error("the server sent more after its answer")
	}
}

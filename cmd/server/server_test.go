package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/motoserver"
	"productanalytics/internal/seed"
	"productanalytics/internal/wait"
	"productanalytics/shared/request"
)

var (
	seedTracked  = seed.Body(seed.TrackedEvents)
	seedSessions = seed.Body(seed.Sessions)
)

// TestLocalServerEndToEnd runs the server binary with its keys in a real
// Secrets Manager emulator, in front of an httptest Cube that verifies every
// token it is sent.
func TestLocalServerEndToEnd(t *testing.T) {
	const cubeKey, callerKey = "e2e-cube-key-5d1e0c", "e2e-caller-key-a8b27f"
	moto := motoserver.Start(t)
	cubeARN := moto.CreateSecret(t, "e2e/cube-api-key", cubeKey)
	moto.CreateSecret(t, "e2e/caller-key", callerKey)

	var calls atomic.Int64
	var mu sync.Mutex
	var seen []string
	const answer = `{"queryType":"regularQuery","results":[{"data":[{"TrackedEvents.count":"83"}]}]}`
	cube := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		claims := jwt.MapClaims{}
		if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()).
			ParseWithClaims(r.Header.Get("Authorization"), claims, func(*jwt.Token) (any, error) { return []byte(cubeKey), nil }); err != nil {
			w.WriteHeader(403)
			io.WriteString(w, `{"error":"Invalid token"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %s", claims["appId"], r.URL.Path, body))
		mu.Unlock()
		io.WriteString(w, answer)
	}))
	defer cube.Close()

	bin := filepath.Join(t.TempDir(), "server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	logs := &logcheck.Buffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"PORT=0", // a free port, which the server logs
		"CUBE_API_URL="+cube.URL,
		"CUBE_API_KEY_SECRET_ID="+cubeARN,
		"AUTH_JWT_SECRET_ID=e2e/caller-key",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+moto.URL,
		"AWS_REGION="+motoserver.Region,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server did not stop cleanly on SIGINT: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("server did not stop within 10s of SIGINT")
		}
		checkLogs(t, logs.String(), cubeKey, callerKey)
	}()
	base := "http://" + listeningAddr(t, logs)

	tok := func(projects ...int) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"projects": projects, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(callerKey))
		return s
	}
	for _, body := range []string{seedTracked, seedSessions} {
		status, got := post(t, base+"/api/v4/projects/1/product_analytics/request/load", tok(1), body)
		if status != 200 || got != answer {
			t.Fatalf("seed example: %d %s", status, got)
		}
		var sent struct{ Query json.RawMessage }
		json.Unmarshal([]byte(body), &sent)
		mu.Lock()
		last := seen[len(seen)-1]
		mu.Unlock()
		// Cube sees the API's encoding of the checked query, not the bytes sent.
		q, err := request.ParseQuery(sent.Query)
		if err != nil {
			t.Fatal(err)
		}
		want := "gitlab_project_1 /cubejs-api/v1/load " + `{"query":` + string(q.AppendJSON(nil)) + `,"queryType":"multi"}`
		if last != want {
			t.Fatalf("Cube saw %s\nwant %s", last, want)
		}
	}
	before := calls.Load()
	for _, c := range []struct {
		token, path string
		status      int
	}{
		{"", "/projects/1/product_analytics/request/load", 401},
		{tok(2), "/projects/1/product_analytics/request/load", 404},
		{tok(1), "/projects/01/product_analytics/request/load", 400},
	} {
		if status, body := post(t, base+c.path, c.token, seedTracked); status != c.status {
			t.Errorf("%s with %q: %d %s; want %d", c.path, c.token, status, body, c.status)
		}
	}
	if calls.Load() != before {
		t.Errorf("refused requests called Cube")
	}
}

func checkLogs(t *testing.T, logs string, keys ...string) {
	t.Helper()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Errorf("no request log lines in:\n%s", logs)
	}
	if err := logcheck.Leak(logs, keys...); err != nil {
		t.Errorf("the server's logs: %v", err)
	}
}

func post(t *testing.T, url, token, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// listeningAddr waits for the server's log line saying where it listens.
func listeningAddr(t *testing.T, logs *logcheck.Buffer) string {
	t.Helper()
	re := regexp.MustCompile(`"msg":"product analytics API listening","addr":"(127\.0\.0\.1:[0-9]+)"`)
	var m []string
	wait.Until(t, "the server's log line with its address", func() bool {
		m = re.FindStringSubmatch(logs.String())
		return m != nil
	})
	return m[1]
}

package template_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/stack"
	"productanalytics/shared/access"
	"productanalytics/shared/api"
	"productanalytics/shared/apigw"
)

// expectation is what events/events.json says of one event: the function it
// is for and the answer it must get from the local stack.
type expectation struct {
	Function string   `json:"function"`
	Status   int      `json:"status"`
	Message  string   `json:"message"`
	BodyKeys []string `json:"bodyKeys"`
}

func loadExpectations(t *testing.T) map[string]expectation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", "events.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]expectation
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("events/events.json: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "events", "*.json"))
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := m[name]; !ok && name != "events.json" {
			t.Errorf("events/%s is not in events/events.json", name)
		}
	}
	for name := range m {
		if _, err := os.Stat(filepath.Join(root, "events", name)); err != nil {
			t.Errorf("events/events.json lists %s: %v", name, err)
		}
	}
	return m
}

// TestEventsAreRealistic checks each event against what API Gateway sends
// for a route of its function in template.yaml.
func TestEventsAreRealistic(t *testing.T) {
	tpl := loadTemplate(t)
	byFunction := routes(t, tpl)
	for name, want := range loadExpectations(t) {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, "events", name))
			if err != nil {
				t.Fatal(err)
			}
			fnRoutes, ok := byFunction[want.Function]
			if !ok {
				t.Fatalf("function %q is not in template.yaml", want.Function)
			}
			var probe struct {
				Version    string `json:"version"`
				HTTPMethod string `json:"httpMethod"`
			}
			if err := json.Unmarshal(raw, &probe); err != nil {
				t.Fatal(err)
			}
			var (
				r             route
				path, body    string
				authorization string
				pathID        string
			)
			switch {
			case probe.Version == "2.0":
				var e events.APIGatewayV2HTTPRequest
				if err := json.Unmarshal(raw, &e); err != nil {
					t.Fatal(err)
				}
				method, tmpl, _ := strings.Cut(e.RouteKey, " ")
				r = route{method, tmpl}
				rc := e.RequestContext
				if rc.RouteKey != e.RouteKey || rc.HTTP.Method != method || rc.HTTP.Path != e.RawPath || rc.Stage != "$default" ||
					rc.RequestID == "" || rc.HTTP.SourceIP == "" || rc.APIID == "" || rc.TimeEpoch == 0 {
					t.Errorf("requestContext does not agree with the event: %+v", rc)
				}
				for k := range e.Headers {
					if k != strings.ToLower(k) {
						t.Errorf("header %q: payload 2.0 headers are lower-case", k)
					}
				}
				if n, err := strconv.Atoi(e.Headers["content-length"]); err != nil || n != len(e.Body) {
					t.Errorf("content-length %q, body %d bytes", e.Headers["content-length"], len(e.Body))
				}
				path, body, authorization, pathID = e.RawPath, e.Body, e.Headers["authorization"], e.PathParameters["id"]
			case probe.HTTPMethod != "":
				var e events.APIGatewayProxyRequest
				if err := json.Unmarshal(raw, &e); err != nil {
					t.Fatal(err)
				}
				// A REST API (payload 1.0) is not in template.yaml; its
				// resource must still be one of the function's routes.
				r = route{e.HTTPMethod, e.Resource}
				rc := e.RequestContext
				if rc.ResourcePath != e.Resource || rc.HTTPMethod != e.HTTPMethod || rc.RequestID == "" || rc.Identity.SourceIP == "" {
					t.Errorf("requestContext does not agree with the event: %+v", rc)
				}
				if !slices.Equal(e.MultiValueHeaders["Authorization"], []string{e.Headers["Authorization"]}) {
					t.Error("headers and multiValueHeaders disagree")
				}
				path, body, authorization, pathID = e.Path, e.Body, e.Headers["Authorization"], e.PathParameters["id"]
			default:
				t.Fatal("neither a payload 2.0 nor a 1.0 event")
			}
			if !slices.Contains(fnRoutes, r) {
				t.Errorf("%s is not a route of %s in template.yaml (%v)", r, want.Function, fnRoutes)
			}
			if strings.Replace(r.path, "{id}", pathID, 1) != path {
				t.Errorf("path %s is not route %s with id %q", path, r.path, pathID)
			}
			if body != "" && !json.Valid([]byte(body)) {
				t.Errorf("the body is not JSON: %s", body)
			}
			if authorization != "" {
				checkToken(t, authorization)
			}
		})
	}
}

// checkToken checks that a caller token of an event is signed with the
// local stack's fixed key and stays valid for years.
func checkToken(t *testing.T, authorization string) {
	t.Helper()
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		t.Errorf("authorization %q is not a bearer token", authorization)
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return []byte(stack.LocalCallerKey), nil })
	if err != nil {
		t.Errorf("the token does not verify with the local stack's key: %v", err)
		return
	}
	exp, _ := claims.GetExpirationTime()
	if exp.Before(time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("the token expires %s; events should outlive the project", exp)
	}
}

// TestEventsGetTheirExpectedStatus sends each event through the real
// API Gateway adapter and router, with the local stack's caller key and a
// Cube that answers every query, and checks the status events.json expects.
// Against a real Cube the answers are the runtime-emulator tests' to check.
func TestEventsGetTheirExpectedStatus(t *testing.T) {
	checker := access.NewJWT(access.JWTOptions{
		Key: func(context.Context) (string, error) { return stack.LocalCallerKey, nil },
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, want := range loadExpectations(t) {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, "events", name))
			if err != nil {
				t.Fatal(err)
			}
			h := apigw.Handler(api.NewHandler(checker, fakeCube{}, log, endpointOf[want.Function]))
			resp, err := h(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(resp)
			var got struct {
				StatusCode int    `json:"statusCode"`
				Body       string `json:"body"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.StatusCode != want.Status {
				t.Errorf("status %d, want %d: %s", got.StatusCode, want.Status, got.Body)
			}
			if want.Message != "" {
				var m struct{ Message string }
				if json.Unmarshal([]byte(got.Body), &m); m.Message != want.Message {
					t.Errorf("message %q, want %q", m.Message, want.Message)
				}
			}
			if (want.Status == 200) != (len(want.BodyKeys) > 0) {
				t.Error("events.json: give bodyKeys for answers of 200, message for refusals")
			}
		})
	}
}

package template_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
)

// apiEvents returns the API Gateway events of events/ by file name; the
// others (the warm-up's input) are not routed.
func apiEvents(t *testing.T) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "events", "*.json"))
	out := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var probe struct {
			Version    string `json:"version"`
			HTTPMethod string `json:"httpMethod"`
		}
		if json.Unmarshal(raw, &probe) == nil && (probe.Version == "2.0" || probe.HTTPMethod != "") {
			out[filepath.Base(f)] = raw
		}
	}
	if len(out) < 5 {
		t.Fatalf("only %d API Gateway events in events/", len(out))
	}
	return out
}

// TestEventsAreRealistic checks each event against what API Gateway sends
// for a route of template.yaml. What each answers on the local stack, the
// runtime-emulator tests check.
func TestEventsAreRealistic(t *testing.T) {
	tpl := loadTemplate(t)
	routed := map[route]bool{}
	for _, rs := range routes(t, tpl) {
		for _, r := range rs {
			routed[r] = true
		}
	}
	for name, raw := range apiEvents(t) {
		t.Run(name, func(t *testing.T) {
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
			if !routed[r] {
				t.Errorf("%s is not a route of template.yaml", r)
			}
			if strings.Replace(r.path, "{id}", pathID, 1) != path {
				t.Errorf("path %s is not route %s with id %q", path, r.path, pathID)
			}
			if body != "" && !json.Valid([]byte(body)) {
				t.Errorf("the body is not JSON: %s", body)
			}
			// The 200s carry the documentation's examples, byte for byte.
			seedBody := map[string]string{
				"load-v2.json": seed.Body(seed.TrackedEvents), "load-v1.json": seed.Body(seed.TrackedEvents),
				"dry-run-v2.json": seed.Body(seed.TrackedEvents), "load-sessions-v2.json": seed.Body(seed.Sessions),
			}[name]
			if seedBody != "" && body != seedBody {
				t.Errorf("the body is not the documented example:\n%s\nwant\n%s", body, seedBody)
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

package apigw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/shared/trace"
)

// echo answers with what it was asked, so each test can see how the event
// turned into a request.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("Set-Cookie", "a=1")
	w.Header().Add("Set-Cookie", "b=2")
	w.WriteHeader(http.StatusTeapot)
	json.NewEncoder(w).Encode(map[string]any{
		"method":  r.Method,
		"path":    r.URL.Path,
		"query":   r.URL.Query(),
		"auth":    r.Header.Get("Authorization"),
		"reqid":   r.Header.Get("X-Request-Id"),
		"cookie":  r.Header.Get("Cookie"),
		"body":    string(body),
		"remote":  r.RemoteAddr,
		"hasDead": hasDeadline(r.Context()),
		"gateway": trace.GatewayRequestID(r.Context()),
	})
})

func hasDeadline(ctx context.Context) bool { _, ok := ctx.Deadline(); return ok }

type echoed struct {
	Method, Path, Auth, Reqid, Cookie, Body, Remote, Gateway string
	Query                                                    map[string][]string
}

const v2Event = `{
  "version": "2.0",
  "routeKey": "POST /projects/{id}/product_analytics/request/load",
  "rawPath": "/projects/1/product_analytics/request/load",
  "rawQueryString": "include_token=true&x=1&x=2",
  "cookies": ["c1=v1", "c2=v2"],
  "headers": {"authorization": "Bearer abc", "content-type": "application/json"},
  "requestContext": {"requestId": "gw-req-1", "http": {"method": "POST", "path": "/projects/1/product_analytics/request/load", "sourceIp": "203.0.113.9"}},
  "body": "eyJxdWVyeSI6e319",
  "isBase64Encoded": true
}`

const v1Event = `{
  "resource": "/projects/{id}/product_analytics/request/load",
  "path": "/projects/1/product_analytics/request/load",
  "httpMethod": "POST",
  "headers": {"Authorization": "Bearer abc"},
  "multiValueHeaders": {"Authorization": ["Bearer abc"], "X-Request-Id": ["caller-id"]},
  "queryStringParameters": {"include_token": "true"},
  "multiValueQueryStringParameters": {"include_token": ["true"], "x": ["1", "2"]},
  "requestContext": {"requestId": "gw-req-2", "identity": {"sourceIp": "198.51.100.4"}},
  "body": "{\"query\":{}}",
  "isBase64Encoded": false
}`

func TestPayloadV2(t *testing.T) {
	out, err := Handler(echo)(context.Background(), json.RawMessage(v2Event))
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(events.APIGatewayV2HTTPResponse)
	if !ok {
		t.Fatalf("answer is %T; want a payload 2.0 response", out)
	}
	var got echoed
	json.Unmarshal([]byte(resp.Body), &got)
	if resp.StatusCode != http.StatusTeapot || resp.IsBase64Encoded || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("response %+v", resp)
	}
	if len(resp.Cookies) != 2 || resp.Cookies[0] != "a=1" {
		t.Fatalf("cookies %v", resp.Cookies)
	}
	if got.Method != "POST" || got.Path != "/projects/1/product_analytics/request/load" || got.Auth != "Bearer abc" ||
		got.Body != `{"query":{}}` || got.Reqid != "gw-req-1" || got.Cookie != "c1=v1; c2=v2" || got.Remote != "203.0.113.9" || got.Gateway != "gw-req-1" ||
		strings.Join(got.Query["x"], ",") != "1,2" || got.Query["include_token"][0] != "true" {
		t.Fatalf("request seen as %+v", got)
	}
}

func TestPayloadV1(t *testing.T) {
	out, err := Handler(echo)(context.Background(), json.RawMessage(v1Event))
	if err != nil {
		t.Fatal(err)
	}
	resp, ok := out.(events.APIGatewayProxyResponse)
	if !ok {
		t.Fatalf("answer is %T; want a payload 1.0 response", out)
	}
	var got echoed
	json.Unmarshal([]byte(resp.Body), &got)
	if resp.StatusCode != http.StatusTeapot || len(resp.MultiValueHeaders["Set-Cookie"]) != 2 {
		t.Fatalf("response %+v", resp)
	}
	// The caller's id is the request's; API Gateway's stays known beside it.
	if got.Method != "POST" || got.Auth != "Bearer abc" || got.Body != `{"query":{}}` || got.Reqid != "caller-id" || got.Gateway != "gw-req-2" ||
		got.Remote != "198.51.100.4" || strings.Join(got.Query["x"], ",") != "1,2" {
		t.Fatalf("request seen as %+v", got)
	}
}

func TestBinaryAnswerIsBase64(t *testing.T) {
	bin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0xff, 0xfe, 0x00}) })
	out, err := Handler(bin)(context.Background(), json.RawMessage(v2Event))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.APIGatewayV2HTTPResponse)
	b, _ := base64.StdEncoding.DecodeString(resp.Body)
	if !resp.IsBase64Encoded || string(b) != "\xff\xfe\x00" || resp.StatusCode != 200 {
		t.Fatalf("response %+v", resp)
	}
}

func TestUnsupportedEvents(t *testing.T) {
	for _, ev := range []string{`{}`, `{"detail-type":"Scheduled Event"}`, `[1]`, `"x"`} {
		if _, err := Handler(echo)(context.Background(), json.RawMessage(ev)); !errors.Is(err, ErrUnsupportedEvent) {
			t.Errorf("event %s: err = %v", ev, err)
		}
	}
	bad := strings.Replace(v2Event, `"eyJxdWVyeSI6e319"`, `"!!!"`, 1)
	if _, err := Handler(echo)(context.Background(), json.RawMessage(bad)); err == nil {
		t.Error("a body that is not base64 was accepted")
	}
}

// Fits says whether an answer, once in a response event, stays within what
// Lambda may return: checked against the encoded events themselves.
func TestFits(t *testing.T) {
	tests := []struct {
		name string
		body string
		fits bool
	}{
		{"5 MB of text", strings.Repeat("a", 5<<20), true},
		{"7 MB of text", strings.Repeat("a", 7<<20), false},
		{"3.5 MB that JSON escapes to 7 MB", strings.Repeat(`"`, 3584<<10), false},
		{"5 MB of binary, 6.7 MB in base64", strings.Repeat("\xff", 5<<20), false},
		{"4 MB of binary, 5.3 MB in base64", strings.Repeat("\xff", 4<<20), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fits(nil, []byte(tt.body)); got != tt.fits {
				t.Fatalf("Fits = %v, want %v", got, tt.fits)
			}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.body) })
			for _, ev := range []string{v2Event, v1Event} {
				out, err := Handler(h)(context.Background(), json.RawMessage(ev))
				if !tt.fits {
					// A handler that did not ask Fits gets an error, which
					// Lambda reports, rather than an event it cannot return.
					if !errors.Is(err, ErrTooLarge) {
						t.Fatalf("error %v, want ErrTooLarge", err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := json.Marshal(out); len(b) > MaxResponseBytes {
					t.Fatalf("the event is %d bytes", len(b))
				}
			}
		})
	}
}

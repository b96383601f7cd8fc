// Package trace carries what links one request across API Gateway, Lambda,
// X-Ray and Cube: the X-Ray trace header, API Gateway's request id and the
// Lambda invocation's id, so that a slow answer can be followed from API
// Gateway's access log to Cube's log.
package trace

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Header is the header X-Ray's trace context travels in.
const Header = "X-Amzn-Trace-Id"

// lambdaKey is where aws-lambda-go puts the invocation's trace header
// (Lambda-Runtime-Trace-Id): a string key of its own choosing.
const lambdaKey = "x-amzn-trace-id"

type key int

const (
	headerKey key = iota
	gatewayKey
)

// maxHeader bounds a trace header taken from a caller.
const maxHeader = 256

// NewContext returns ctx carrying the trace header of its request.
func NewContext(ctx context.Context, header string) context.Context {
	return context.WithValue(ctx, headerKey, header)
}

// FromContext returns the trace header of the request or invocation ctx
// belongs to: the one NewContext put there, else the Lambda invocation's.
func FromContext(ctx context.Context) string {
	if h, ok := ctx.Value(headerKey).(string); ok && h != "" {
		return h
	}
	h, _ := ctx.Value(lambdaKey).(string)
	return h
}

// Incoming returns the trace header of a request: its Lambda invocation's
// when it runs in one (with active tracing, the trace X-Ray records), else
// the request's own X-Amzn-Trace-Id (a load balancer's, say) when it is well
// formed, else "".
func Incoming(ctx context.Context, h http.Header) string {
	if v, _ := ctx.Value(lambdaKey).(string); v != "" {
		return v
	}
	if v := h.Get(Header); wellFormed(v) {
		return v
	}
	return ""
}

// wellFormed accepts what X-Ray and load balancers write (Root=...;
// Parent=...;Sampled=1;Self=...;Lineage=a87bd80c:1|68fd508a:5) and nothing
// that could break a header or a log line.
func wellFormed(h string) bool {
	if h == "" || len(h) > maxHeader {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("=;:|._-", c) >= 0) {
			return false
		}
	}
	return true
}

// ID returns the trace id of a header (its Root, e.g.
// 1-5759e988-bd862e3fe1be46a994272793), which X-Ray's console and
// CloudWatch's trace search take; "" when it has none.
func ID(header string) string {
	for field := range strings.SplitSeq(header, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(field), "Root="); ok && xrayID(v) {
			return v
		}
	}
	return ""
}

// xrayID reports whether s is an X-Ray trace id: 1-<8 hex>-<24 hex>.
func xrayID(s string) bool {
	if len(s) != 35 || s[:2] != "1-" || s[10] != '-' {
		return false
	}
	for i, c := range []byte(s) {
		if i < 2 || i == 10 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// WithGatewayRequestID returns ctx carrying API Gateway's id of its request
// (requestContext.requestId), which API Gateway's access log records.
func WithGatewayRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, gatewayKey, id)
}

// GatewayRequestID returns API Gateway's id of the request ctx belongs to,
// "" outside API Gateway.
func GatewayRequestID(ctx context.Context) string {
	id, _ := ctx.Value(gatewayKey).(string)
	return id
}

// InvocationID returns the Lambda invocation's request id, which Lambda's
// REPORT line, X-Ray and API Gateway's access log
// ($context.integration.requestId) record; "" outside Lambda.
func InvocationID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}

// Attrs are the log attributes of what ctx runs in: trace_id and
// lambda_request_id, each when known.
func Attrs(ctx context.Context) []slog.Attr {
	var attrs []slog.Attr
	if id := ID(FromContext(ctx)); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	if id := InvocationID(ctx); id != "" {
		attrs = append(attrs, slog.String("lambda_request_id", id))
	}
	return attrs
}

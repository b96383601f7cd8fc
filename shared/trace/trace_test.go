package trace_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"productanalytics/shared/trace"
)

const lambdaHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

// invocation is the context aws-lambda-go gives a handler, with the
// invocation's trace header under its own key.
func invocation() context.Context {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd"})
	//lint:ignore SA1029 the key aws-lambda-go itself uses
	return context.WithValue(ctx, "x-amzn-trace-id", lambdaHeader)
}

func TestIncoming(t *testing.T) {
	alb := "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678"
	tests := []struct {
		name   string
		ctx    context.Context
		header string
		want   string
	}{
		{"the Lambda invocation's, whatever the caller sends", invocation(), alb, lambdaHeader},
		{"a load balancer's outside Lambda", context.Background(), alb, alb},
		{"none", context.Background(), "", ""},
		{"a header with a space", context.Background(), "Root=1-67891233-abcdef012345678912345678; Sampled=1", ""},
		{"a header with a newline", context.Background(), "Root=1\nx", ""},
		{"a header with a quote", context.Background(), `Root="x"`, ""},
		{"a header past 256 bytes", context.Background(), "Root=" + strings.Repeat("a", 252), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set(trace.Header, tt.header)
			}
			if got := trace.Incoming(tt.ctx, h); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFromContext(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"nothing", context.Background(), ""},
		{"the Lambda invocation's", invocation(), lambdaHeader},
		{"the request's over the invocation's", trace.NewContext(invocation(), "Root=1-67891233-abcdef012345678912345678"), "Root=1-67891233-abcdef012345678912345678"},
		{"an empty request header leaves the invocation's", trace.NewContext(invocation(), ""), lambdaHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trace.FromContext(tt.ctx); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestID(t *testing.T) {
	tests := []struct{ header, want string }{
		{lambdaHeader, "1-5759e988-bd862e3fe1be46a994272793"},
		{"Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678", "1-67891233-abcdef012345678912345678"},
		{"Root=1-67891233-ABCDEF012345678912345678", ""},
		{"Root=2-67891233-abcdef012345678912345678", ""},
		{"Root=1-6789123-abcdef0123456789123456789", ""},
		{"Parent=53995c3f42cd8ad8;Sampled=1", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := trace.ID(tt.header); got != tt.want {
			t.Errorf("ID(%q): got %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	ctx := trace.WithGatewayRequestID(invocation(), "c6af9ac6-7b61-11e6-9a41-93e8deadbeef")
	if got := trace.GatewayRequestID(ctx); got != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" {
		t.Errorf("GatewayRequestID: got %q", got)
	}
	if got := trace.InvocationID(ctx); got != "8476a536-e9f4-11e8-9739-2dfe598c3fcd" {
		t.Errorf("InvocationID: got %q", got)
	}
	if got, want := trace.GatewayRequestID(context.Background())+trace.InvocationID(context.Background()), ""; got != want {
		t.Errorf("outside API Gateway and Lambda: got %q, want none", got)
	}
}

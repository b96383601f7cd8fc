package api

import (
	"context"
	"errors"
	"log/slog"

	"productanalytics/shared/access"
	"productanalytics/shared/cube"
	"productanalytics/shared/request"
	"productanalytics/shared/trace"
)

// reasons names each cause of an answer other than 200 for the Refusals
// metric's Reason dimension: few and fixed, as each value is a metric of
// its own. Every cause of the answers table has one (a test checks).
var reasons = []struct {
	cause error
	name  string
}{
	{ErrClientGone, "ClientGone"},
	{ErrNoRoute, "NoRoute"},
	{ErrMethod, "MethodNotAllowed"},
	{request.ErrInvalid, "InvalidRequest"},
	{request.ErrBodyTooLarge, "BodyTooLarge"},
	{access.ErrUnauthenticated, "Unauthenticated"},
	{access.ErrProjectNotFound, "ProjectNotFound"},
	{access.ErrAccessDenied, "AccessDenied"},
	{access.ErrUnavailable, "AccessUnavailable"},
	{ErrProjectBusy, "ProjectBusy"},
	{cube.ErrBusy, "CubeBusy"},
	{cube.ErrStore, "StoreFailed"},
	{cube.ErrQuery, "CubeQueryError"},
	{cube.ErrDatabaseNotFound, "DatabaseNotFound"},
	{cube.ErrFailed, "CubeFailed"},
	{cube.ErrBadAnswer, "CubeBadAnswer"},
	{cube.ErrKeyRefused, "CubeKeyRefused"},
	{cube.ErrUnreachable, "CubeUnreachable"},
	{cube.ErrTimeout, "CubeTimeout"},
	{cube.ErrKeyUnavailable, "CubeKeyUnavailable"},
	{ErrFunnelsUnavailable, "FunnelsUnavailable"},
	{ErrUnconfigured, "Unconfigured"},
	{ErrAnswerCutShort, "AnswerCutShort"},
	{ErrAnswerTooLarge, "AnswerTooLarge"},
}

// internalReason names a cause the table does not know: a fault of the
// API itself, answered 500.
const internalReason = "Internal"

// reasonName is the Reason of err; "" for none.
func reasonName(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.cause) {
			return r.name
		}
	}
	return internalReason
}

// traceAttrs are the ids that join a request's log line to the other
// records of it: the X-Ray trace, API Gateway's access log (its request id,
// when the caller's X-Request-Id took the place of it in request_id) and
// the Lambda invocation.
func traceAttrs(ctx context.Context, requestID string) []slog.Attr {
	attrs := trace.Attrs(ctx)
	if id := trace.GatewayRequestID(ctx); id != "" && id != requestID {
		attrs = append(attrs, slog.String("gateway_request_id", id))
	}
	return attrs
}

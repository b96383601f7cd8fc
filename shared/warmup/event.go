package warmup

import (
	"context"
	"encoding/json"
	"fmt"
)

// ParseEvent reads a warm-up's input from what the function is invoked with:
// the Input of an EventBridge schedule (or a direct invocation), or a whole
// EventBridge event whose detail carries the input.
func ParseEvent(raw json.RawMessage) (Input, error) {
	var in Input
	err := parseEvent(raw, &in)
	return in, err
}

// parseEvent reads into v what a schedule or a direct invocation sends:
// the input itself, or an EventBridge event whose detail is the input.
func parseEvent(raw json.RawMessage, v any) error {
	var envelope struct {
		DetailType string          `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return fmt.Errorf("the warm-up input is not a JSON object: %w", err)
	}
	if envelope.DetailType != "" {
		raw = envelope.Detail
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("reading the warm-up input: %w", err)
	}
	return nil
}

// Handler is the warm-up function's Lambda handler.
func (r *Runner) Handler(ctx context.Context, event json.RawMessage) (Summary, error) {
	in, err := ParseEvent(event)
	if err != nil {
		r.log.Error("warm-up refused", "reason", err.Error())
		return Summary{}, err
	}
	return r.Run(ctx, in)
}

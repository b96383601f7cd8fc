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
	var envelope struct {
		DetailType string          `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return Input{}, fmt.Errorf("the warm-up input is not a JSON object: %w", err)
	}
	if envelope.DetailType != "" {
		raw = envelope.Detail
	}
	var in Input
	if err := json.Unmarshal(raw, &in); err != nil {
		return Input{}, fmt.Errorf("reading the warm-up input: %w", err)
	}
	return in, nil
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

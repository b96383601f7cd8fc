// Package request parses and validates what a caller sends to the product
// analytics API, so that nothing malformed ever reaches Cube.
package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// MaxBodyBytes is the largest request body accepted; Cube's own JSON body
// limit is the same.
const MaxBodyBytes = 1 << 20

// MaxLimit is the largest row limit Cube serves.
const MaxLimit = 50000

// Error is a refusal of the caller's request: the status and the message to
// answer with.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// ErrTooLarge is the answer to a body over MaxBodyBytes.
var ErrTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Message: "413 Request Entity Too Large"}

// ProjectID parses the path's project id. Only the canonical form of a
// positive 63-bit integer is accepted, so that one project has one spelling.
func ProjectID(s string) (int64, error) {
	invalid := badRequest("id is invalid: it must be a positive integer project ID, got %q", truncate(s, 32))
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, invalid
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, invalid
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalid
	}
	return id, nil
}

// Body is a validated load or dry-run request.
type Body struct {
	// Query is the caller's Cube query, forwarded byte for byte.
	Query json.RawMessage
	// QueryType is what Cube is asked for; always "multi".
	QueryType string
	// IncludeToken asks for the Cube token in the answer.
	IncludeToken bool
}

// ParseBody parses and validates a load or dry-run body.
func ParseBody(data []byte) (Body, error) {
	if len(data) > MaxBodyBytes {
		return Body{}, ErrTooLarge
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return Body{}, badRequest("query is missing")
	}
	var raw struct {
		Query        json.RawMessage `json:"query"`
		QueryType    json.RawMessage `json:"queryType"`
		IncludeToken json.RawMessage `json:"include_token"`
	}
	if data[0] != '{' {
		return Body{}, badRequest("request body must be a JSON object")
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Body{}, badRequest("request body is not valid JSON: %s", jsonProblem(err))
	}
	b := Body{QueryType: "multi"}
	if len(raw.Query) == 0 || string(raw.Query) == "null" {
		return Body{}, badRequest("query is missing")
	}
	if raw.Query[0] != '{' {
		return Body{}, badRequest("query must be a JSON object (a Cube query)")
	}
	if err := ValidateQuery(raw.Query); err != nil {
		return Body{}, err
	}
	b.Query = raw.Query
	if len(raw.QueryType) > 0 && string(raw.QueryType) != "null" {
		var qt string
		if err := json.Unmarshal(raw.QueryType, &qt); err != nil || qt != "multi" {
			return Body{}, badRequest(`queryType is not supported: only "multi" is`)
		}
	}
	if len(raw.IncludeToken) > 0 && string(raw.IncludeToken) != "null" {
		v, err := parseBool(raw.IncludeToken)
		if err != nil {
			return Body{}, err
		}
		b.IncludeToken = v
	}
	return b, nil
}

// IncludeTokenParam parses the include_token query-string parameter; absent
// means false.
func IncludeTokenParam(v string) (bool, error) {
	switch v {
	case "", "false", "0", "no", "off", "f", "n":
		return false, nil
	case "true", "1", "yes", "on", "t", "y":
		return true, nil
	}
	return false, badRequest("include_token is invalid: it must be true or false")
}

// parseBool accepts a JSON boolean or the strings a form field would carry,
// as GitLab's API does.
func parseBool(raw json.RawMessage) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return IncludeTokenParam(s)
	}
	return false, badRequest("include_token is invalid: it must be true or false")
}

func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("%s at byte %d", e.Error(), e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("%s has the wrong type", e.Field)
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

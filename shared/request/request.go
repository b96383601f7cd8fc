// Package request reads what a caller sends to the product analytics API
// (the project id, the body and its Cube query, include_token) and checks
// it against an allow-list, so that nothing unchecked ever reaches Cube.
package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// MaxBodyBytes is the largest request body accepted; Cube's own JSON body
// limit is the same.
const MaxBodyBytes = 1 << 20

// Error is a refusal of what the caller sent: the part that is wrong
// (Field, such as "query.timezone"; empty for the request as a whole) and
// what is wrong with it. The API answers it with 400 and its text.
type Error struct {
	Field   string
	Problem string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + " " + e.Problem
}

// Is reports whether target is ErrInvalid: every *Error is one.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

var (
	// ErrInvalid matches every *Error: a request that is wrong.
	ErrInvalid = errors.New("invalid request")
	// ErrBodyTooLarge is returned for a body over MaxBodyBytes.
	ErrBodyTooLarge = errors.New("the request body is larger than 1 MB")
)

// Call is a checked call of the API: the project, and for load and dry-run
// the query.
type Call struct {
	ProjectID int64
	// Queries are the checked queries: none for meta, one, or several for
	// a data-blending array (Cube answers with one result each).
	Queries []*Query
	// Blend says the queries came as an array, and go to Cube as one.
	Blend bool
	// IncludeToken asks for the Cube token in the answer.
	IncludeToken bool
}

// AppendQuery appends the encoding of the call's queries that Cube gets:
// the query, or the array of queries.
func (c Call) AppendQuery(b []byte) []byte {
	if !c.Blend {
		return c.Queries[0].AppendJSON(b)
	}
	b = append(b, '[')
	for i, q := range c.Queries {
		if i > 0 {
			b = append(b, ',')
		}
		b = q.AppendJSON(b)
	}
	return append(b, ']')
}

// Read reads a call from r: the project id (the path's id, which the
// router found), and when withQuery is set, the query with queryType and
// include_token: from the JSON body of a POST (read through
// http.MaxBytesReader, at most MaxBodyBytes), or from the query string of
// a GET, as Cube's own client sends them (?query=...&queryType=multi).
// include_token may also be in the query string of a POST. w is the
// response the call will be answered on: past the size limit, the server
// closes the connection after the answer.
func Read(w http.ResponseWriter, r *http.Request, id string, withQuery bool) (Call, error) {
	var c Call
	var err error
	if c.ProjectID, err = ProjectID(id); err != nil || !withQuery {
		return c, err
	}
	var b Body
	if r.Method == http.MethodGet {
		b, err = parseParams(r.URL.Query())
	} else {
		b, err = readBody(w, r)
	}
	if err != nil {
		return c, err
	}
	param, err := IncludeTokenParam(r.URL.Query().Get("include_token"))
	if err != nil {
		return c, err
	}
	c.Queries, c.Blend, c.IncludeToken = b.Queries, b.Blend, b.IncludeToken || param
	return c, nil
}

func readBody(w http.ResponseWriter, r *http.Request) (Body, error) {
	if r.ContentLength > MaxBodyBytes {
		return Body{}, ErrBodyTooLarge
	}
	var data []byte
	if r.Body != nil {
		var err error
		data, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return Body{}, ErrBodyTooLarge
		case err != nil:
			return Body{}, &Error{Problem: "the request body could not be read"}
		}
	}
	return ParseBody(data)
}

// parseParams reads the query and queryType of a GET's query string.
func parseParams(params url.Values) (Body, error) {
	var b Body
	if qt := params.Get("queryType"); qt != "" && qt != "multi" {
		return b, &Error{Field: "queryType", Problem: `is not supported: only "multi" is`}
	}
	q := params.Get("query")
	if q == "" {
		return b, &Error{Field: "query", Problem: "is missing"}
	}
	if len(q) > MaxBodyBytes {
		return b, ErrBodyTooLarge
	}
	r := newReader([]byte(q))
	var err error
	if b.Queries, b.Blend, err = r.queries("query"); err != nil {
		return b, err
	}
	return b, r.end()
}

// ProjectID parses the path's project id. Only the canonical form of a
// positive 63-bit integer is accepted, so that one project has one spelling.
func ProjectID(s string) (int64, error) {
	invalid := &Error{Field: "id", Problem: fmt.Sprintf("is invalid: it must be a positive integer project ID, got %q", truncate(s, 32))}
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

// Body is a checked load or dry-run request body.
type Body struct {
	// Queries are the caller's queries, checked: one, or those of an array.
	Queries []*Query
	// Blend says the query was an array.
	Blend bool
	// IncludeToken asks for the Cube token in the answer.
	IncludeToken bool
}

// ParseBody parses and checks a load or dry-run body: {"query": {...} or
// [{...}, ...], "queryType": "multi", "include_token": false}. Other keys
// are ignored, as GitLab's API ignores them; none of them reaches Cube.
func ParseBody(data []byte) (Body, error) {
	if len(data) > MaxBodyBytes {
		return Body{}, ErrBodyTooLarge
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Body{}, &Error{Field: "query", Problem: "is missing"}
	}
	var b Body
	r := newReader(data)
	err := r.object("", "a JSON object", func(key string) error {
		switch key {
		case "query":
			if null, err := r.null(); null || err != nil {
				return err
			}
			var err error
			b.Queries, b.Blend, err = r.queries("query")
			return err
		case "queryType":
			if null, err := r.null(); null || err != nil {
				return err
			}
			if qt, err := r.str(key); err != nil || qt != "multi" {
				return &Error{Field: "queryType", Problem: `is not supported: only "multi" is`}
			}
			return nil
		case "include_token":
			v, err := r.includeToken()
			b.IncludeToken = v
			return err
		}
		return r.skip()
	})
	if err != nil {
		if e, ok := err.(*Error); ok && e.Field == "" && e.Problem == "must be a JSON object" {
			e.Problem = "the request body must be a JSON object"
		}
		return Body{}, err
	}
	if err := r.end(); err != nil {
		return Body{}, err
	}
	if b.Queries == nil {
		return Body{}, &Error{Field: "query", Problem: "is missing"}
	}
	return b, nil
}

// queries reads a query, or an array of at most MaxQueries queries (data
// blending) whose answers together are within the budget (MaxCells), at
// field.
func (r *reader) queries(field string) ([]*Query, bool, error) {
	tok, err := r.peek()
	if err != nil {
		return nil, false, err
	}
	if tok == json.Delim('{') {
		q, err := r.query(field)
		return []*Query{q}, false, err
	}
	if tok != json.Delim('[') {
		r.skip()
		return nil, false, &Error{Field: field, Problem: "must be a JSON object (a Cube query), or an array of them"}
	}
	var qs []*Query
	err = r.array(field, "an array of queries", MaxQueries, func(i int) error {
		q, err := r.query(field + "[" + strconv.Itoa(i) + "]")
		qs = append(qs, q)
		return err
	})
	if err == nil && len(qs) == 0 {
		err = &Error{Field: field, Problem: "is an empty array of queries"}
	}
	for i := 0; err == nil && i < len(qs); i++ {
		err = qs[i].checkBlended(field + "[" + strconv.Itoa(i) + "]")
	}
	if err == nil {
		err = checkCallCells(field, qs)
	}
	return qs, true, err
}

// checkBlended refuses a query of an array without a first time dimension
// with a granularity: Cube blends the answers by it, and a query without
// one ends Cube's own check in a TypeError, a 500 (queryguard.js checkCall
// refuses the same).
func (q *Query) checkBlended(field string) error {
	if len(q.TimeDimensions) == 0 || q.TimeDimensions[0].Granularity == "" {
		return &Error{Field: field + ".timeDimensions", Problem: "must begin with a time dimension with a granularity: Cube blends the queries of an array by their first time dimension"}
	}
	return nil
}

// includeToken reads include_token: a JSON boolean, or the strings a form
// field would carry, as GitLab's API takes them.
func (r *reader) includeToken() (bool, error) {
	tok, err := r.token()
	if err != nil {
		return false, err
	}
	switch v := tok.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string:
		return IncludeTokenParam(v)
	case json.Delim:
		r.has, r.peeked = true, tok
		r.skip()
	}
	return false, &Error{Field: "include_token", Problem: "is invalid: it must be true or false"}
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
	return false, &Error{Field: "include_token", Problem: "is invalid: it must be true or false"}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// reader walks a JSON document token by token, so that a request is checked
// in one linear pass, stops at the first bound it crosses, keeps the order
// of object keys (query.order depends on it) and sees duplicate keys.
type reader struct {
	scan   *scanner
	peeked json.Token
	has    bool
}

func newReader(data []byte) *reader { return &reader{scan: newScanner(data)} }

// token returns the next token.
func (r *reader) token() (json.Token, error) {
	if r.has {
		r.has = false
		return r.peeked, nil
	}
	return r.scan.token()
}

// peek returns the next token without taking it.
func (r *reader) peek() (json.Token, error) {
	if !r.has {
		tok, err := r.token()
		if err != nil {
			return nil, err
		}
		r.peeked, r.has = tok, true
	}
	return r.peeked, nil
}

// more reports whether the array or object being read has another element.
func (r *reader) more() bool {
	if r.has {
		return r.peeked != json.Delim('}') && r.peeked != json.Delim(']')
	}
	return r.scan.more()
}

// null takes the next value if it is null, and reports whether it was.
func (r *reader) null() (bool, error) {
	tok, err := r.peek()
	if err != nil || tok != nil {
		return false, err
	}
	r.has = false
	return true, nil
}

// end checks that nothing follows the document.
func (r *reader) end() error {
	if r.has || !r.scan.atEnd() {
		return &Error{Problem: "the request body has data after its JSON value"}
	}
	return nil
}

// object reads an object, calling each for every key with the reader at
// its value; each must take the value. A key given twice is refused.
func (r *reader) object(field, what string, each func(key string) error) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return wrongType(field, what)
	}
	var seen []string
	for r.more() {
		tok, err := r.token()
		if err != nil {
			return err
		}
		key := tok.(string) // object keys are always strings
		for _, s := range seen {
			if s == key {
				return &Error{Field: join(field, key), Problem: "appears twice"}
			}
		}
		if len(seen) < 64 {
			seen = append(seen, key)
		}
		if err := each(key); err != nil {
			return err
		}
	}
	_, err = r.token() // '}'
	return err
}

// array reads an array of at most max elements, calling each with the
// reader at the i-th element; each must take it.
func (r *reader) array(field, what string, max int, each func(i int) error) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('[') {
		return wrongType(field, what)
	}
	for i := 0; r.more(); i++ {
		if i == max {
			return &Error{Field: field, Problem: fmt.Sprintf("has more than %d elements", max)}
		}
		if err := each(i); err != nil {
			return err
		}
	}
	_, err = r.token() // ']'
	return err
}

// str reads a string.
func (r *reader) str(field string) (string, error) {
	tok, err := r.token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", wrongType(field, "a string")
	}
	return s, nil
}

// boolean reads true or false.
func (r *reader) boolean(field string) (bool, error) {
	tok, err := r.token()
	if err != nil {
		return false, err
	}
	b, ok := tok.(bool)
	if !ok {
		return false, wrongType(field, "true or false")
	}
	return b, nil
}

// integer reads a whole number from lo to hi.
func (r *reader) integer(field string, lo, hi int64) (int64, error) {
	tok, err := r.token()
	if err != nil {
		return 0, err
	}
	n, ok := tok.(json.Number)
	if !ok {
		return 0, wrongType(field, "a whole number")
	}
	// Any number JSON allows that is whole, as Cube takes it (1e3 too).
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, wrongType(field, "a whole number")
	}
	v := int64(f)
	if v < lo || v > hi {
		return 0, &Error{Field: field, Problem: fmt.Sprintf("is %d, outside %d to %d", v, lo, hi)}
	}
	return v, nil
}

// skip takes the next value, whatever it is.
func (r *reader) skip() error {
	depth := 0
	for {
		tok, err := r.token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

func wrongType(field, what string) error {
	return &Error{Field: field, Problem: "must be " + what}
}

// join names a key of field, quoting keys that are not plain names, since
// they come from the caller.
func join(field, key string) string {
	plain := key != "" && len(key) <= 64
	for i := 0; plain && i < len(key); i++ {
		plain = nameChar(key[i])
	}
	if !plain {
		key = quoteText(truncate(key, 64))
	}
	if field == "" {
		return key
	}
	return field + "." + key
}

// quoteText quotes caller text for a message as JSON quotes it, so that a
// control character shows as \u0000 whichever program wrote the message.
func quoteText(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

package request

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner splits a JSON document into the tokens json.Decoder.Token
// returns (json.Delim, string, json.Number, bool, nil for null), checking
// its syntax as it goes. It does what the checks need and no more, in one
// pass over the bytes: a request's query is read on every call, and
// json.Decoder spent a third of the API's own time doing this.
type scanner struct {
	data  []byte
	pos   int
	stack []byte // the open containers, '{' or '['
	state scanState
}

type scanState int

const (
	wantValue      scanState = iota // a value: the document's, an element's, a key's
	wantFirstElem                   // an element or ']', after '['
	wantFirstKey                    // a key or '}', after '{'
	wantKey                         // a key, after ','
	wantCommaOrEnd                  // ',' or the container's end, after an element
	done                            // the document's value was read
)

func newScanner(data []byte) *scanner { return &scanner{data: data} }

// errEnd is the end of the document where more was expected, or none
// after it.
var errEnd = &Error{Problem: "the request body is not valid JSON: it ends too early"}

func (s *scanner) syntax(what string) error {
	if s.pos >= len(s.data) {
		return errEnd
	}
	return &Error{Problem: fmt.Sprintf("the request body is not valid JSON: %s %q at byte %d", what, s.data[s.pos], s.pos+1)}
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// more reports whether the container being read has another element.
func (s *scanner) more() bool {
	s.skipSpace()
	return s.pos < len(s.data) && s.data[s.pos] != ']' && s.data[s.pos] != '}'
}

// atEnd reports whether the document's value was read and only space
// follows it.
func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.state == done && s.pos == len(s.data)
}

// token returns the next token.
func (s *scanner) token() (json.Token, error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return nil, errEnd
	}
	c := s.data[s.pos]
	switch s.state {
	case done:
		return nil, s.syntax("unexpected")
	case wantCommaOrEnd:
		switch {
		case c == ',':
			s.pos++
			if s.stack[len(s.stack)-1] == '{' {
				s.state = wantKey
			} else {
				s.state = wantValue
			}
			return s.token()
		case c == '}' && s.stack[len(s.stack)-1] == '{', c == ']' && s.stack[len(s.stack)-1] == '[':
			return s.close(c), nil
		}
		return nil, s.syntax("expected a comma or the end of the container, found")
	case wantFirstElem:
		if c == ']' {
			return s.close(c), nil
		}
	case wantFirstKey, wantKey:
		if c == '}' && s.state == wantFirstKey {
			return s.close(c), nil
		}
		if c != '"' {
			return nil, s.syntax("expected a key, found")
		}
		key, err := s.string()
		if err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return nil, s.syntax("expected a colon after a key, found")
		}
		s.pos++
		s.state = wantValue
		return key, nil
	}
	return s.value(c)
}

// close ends the innermost container with c.
func (s *scanner) close(c byte) json.Token {
	s.pos++
	s.stack = s.stack[:len(s.stack)-1]
	s.afterValue()
	return json.Delim(c)
}

func (s *scanner) afterValue() {
	if len(s.stack) == 0 {
		s.state = done
	} else {
		s.state = wantCommaOrEnd
	}
}

// value reads the value starting with c.
func (s *scanner) value(c byte) (json.Token, error) {
	switch {
	case c == '{' || c == '[':
		s.pos++
		s.stack = append(s.stack, c)
		if c == '{' {
			s.state = wantFirstKey
		} else {
			s.state = wantFirstElem
		}
		return json.Delim(c), nil
	case c == '"':
		v, err := s.string()
		if err != nil {
			return nil, err
		}
		s.afterValue()
		return v, nil
	case c == '-' || c >= '0' && c <= '9':
		n, err := s.number()
		if err != nil {
			return nil, err
		}
		s.afterValue()
		return n, nil
	}
	for _, lit := range []struct {
		text string
		v    json.Token
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if len(s.data)-s.pos >= len(lit.text) && string(s.data[s.pos:s.pos+len(lit.text)]) == lit.text {
			s.pos += len(lit.text)
			s.afterValue()
			return lit.v, nil
		}
	}
	return nil, s.syntax("expected a value, found")
}

// number reads a number as JSON writes them.
func (s *scanner) number() (json.Number, error) {
	start := s.pos
	digits := func() int {
		n := 0
		for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case digits() == 0:
		return "", s.syntax("expected a digit, found")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return "", s.syntax("expected a digit after the decimal point, found")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return "", s.syntax("expected a digit in the exponent, found")
		}
	}
	return json.Number(s.data[start:s.pos]), nil
}

// string reads a string starting at its opening quote, decoding escapes
// as encoding/json does (invalid UTF-8 and lone surrogates become U+FFFD).
func (s *scanner) string() (string, error) {
	s.pos++ // the opening quote
	start := s.pos
	// Most strings (names, dates) need no decoding: one copy, no buffer.
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c == '"' {
			v := string(s.data[start:s.pos])
			s.pos++
			return v, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		s.pos++
	}
	buf := append(make([]byte, 0, s.pos-start+16), s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(buf), nil
		case c < 0x20:
			return "", s.syntax("control character in a string:")
		case c == '\\':
			r, err := s.escape()
			if err != nil {
				return "", err
			}
			buf = utf8.AppendRune(buf, r)
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			buf = utf8.AppendRune(buf, r) // RuneError for invalid bytes
			s.pos += size
		}
	}
	return "", errEnd
}

// escape reads an escape sequence at a backslash, and a surrogate pair's
// second half.
func (s *scanner) escape() (rune, error) {
	if s.pos+1 >= len(s.data) {
		return 0, errEnd
	}
	s.pos++
	switch c := s.data[s.pos]; c {
	case '"', '\\', '/':
		s.pos++
		return rune(c), nil
	case 'b':
		s.pos++
		return '\b', nil
	case 'f':
		s.pos++
		return '\f', nil
	case 'n':
		s.pos++
		return '\n', nil
	case 'r':
		s.pos++
		return '\r', nil
	case 't':
		s.pos++
		return '\t', nil
	case 'u':
		r, err := s.hex4()
		if err != nil {
			return 0, err
		}
		if !utf16.IsSurrogate(r) {
			return r, nil
		}
		// A high surrogate followed by a low one is one character.
		if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
			save := s.pos
			s.pos++
			r2, err := s.hex4()
			if err == nil {
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					return dec, nil
				}
			}
			s.pos = save
		}
		return utf8.RuneError, nil
	}
	return 0, s.syntax("invalid escape in a string:")
}

// hex4 reads the four hex digits after \u.
func (s *scanner) hex4() (rune, error) {
	if s.pos+5 > len(s.data) {
		return 0, errEnd
	}
	v, err := strconv.ParseUint(string(s.data[s.pos+1:s.pos+5]), 16, 16)
	if err != nil {
		return 0, s.syntax("invalid \\u escape in a string:")
	}
	s.pos += 5
	return rune(v), nil
}

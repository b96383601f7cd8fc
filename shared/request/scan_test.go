package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

// scanAll reads every token of data with the scanner, and whether the
// document was valid and complete.
func scanAll(data []byte) ([]json.Token, bool) {
	s := newScanner(data)
	var toks []json.Token
	for {
		tok, err := s.token()
		if err != nil {
			return toks, false
		}
		toks = append(toks, tok)
		if s.state == done {
			return toks, s.atEnd()
		}
	}
}

// decodeAll reads every token of data with encoding/json.
func decodeAll(data []byte) []json.Token {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var toks []json.Token
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return toks
		}
		toks = append(toks, tok)
	}
}

func TestScanner(t *testing.T) {
	tests := []struct {
		doc   string
		valid bool
	}{
		{`{"a":[1,-2.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{}}`, true},
		{` [ ] `, true},
		{`"\ud800"`, true}, // a lone surrogate reads as U+FFFD
		{"\"\xff\"", true}, // so does invalid UTF-8
		{`0`, true},
		{`{"a" 1}`, false},
		{`{"a":1,}`, false},
		{`[1 2]`, false},
		{`[01]`, false},
		{`[1.]`, false},
		{`[-]`, false},
		{`["a` + "\n" + `"]`, false},
		{`["\x"]`, false},
		{`["\u12"]`, false},
		{`{"a":1}}`, false},
		{`{"a":1} {}`, false},
		{`[`, false},
		{`tru`, false},
		{`{1:2}`, false},
		{``, false},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			toks, ok := scanAll([]byte(tt.doc))
			if ok != tt.valid {
				t.Fatalf("valid %v, want %v", ok, tt.valid)
			}
			if ok && !reflect.DeepEqual(toks, decodeAll([]byte(tt.doc))) {
				t.Fatalf("tokens %#v\nencoding/json %#v", toks, decodeAll([]byte(tt.doc)))
			}
		})
	}
}

// FuzzScanner: the scanner takes what encoding/json takes, refuses what it
// refuses, and reads the same tokens.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x\u00e9"],"b":null}`, `[true,false,{}]`, `"\ud83d\ude00"`, `-0.1e-7`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, ok := scanAll(data)
		if ok != json.Valid(data) {
			t.Fatalf("scanner valid %v, encoding/json valid %v", ok, json.Valid(data))
		}
		if ok {
			if want := decodeAll(data); !reflect.DeepEqual(toks, want) {
				t.Fatalf("tokens %#v\nencoding/json %#v", toks, want)
			}
		}
	})
}

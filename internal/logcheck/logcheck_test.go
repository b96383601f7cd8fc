package logcheck

import (
	"fmt"
	"sync"
	"testing"
)

func TestLeak(t *testing.T) {
	tests := []struct {
		logs string
		leak bool
	}{
		{`{"msg":"request","status":200}`, false},
		{`{"msg":"request","reason":"used secret-key-123"}`, true},
		{`{"msg":"x","auth":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJwcm9qZWN0cyI6WzFdfQ.c2lnbmF0dXJl"}`, true},
		{`{"msg":"eyJ alone is not a token"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.logs, func(t *testing.T) {
			if err := Leak(tt.logs, "secret-key-123", ""); (err != nil) != tt.leak {
				t.Errorf("got %v, want a leak %v", err, tt.leak)
			}
		})
	}
}

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { fmt.Fprintf(&b, "line %d\n", i) })
	}
	wg.Wait()
	if n := len(b.String()); n < 20*len("line 0\n") {
		t.Fatalf("%d bytes written", n)
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		log  string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\n", 5, "a\nb"},
		{"", 3, ""},
		{"a\nb\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.log, tt.n), func(t *testing.T) {
			if got := LastLines(tt.log, tt.n); got != tt.want {
				t.Errorf("LastLines(%q, %d) = %q; want %q", tt.log, tt.n, got, tt.want)
			}
		})
	}
}

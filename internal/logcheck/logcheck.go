// Package logcheck reads what the services log, for the tests and the local
// stack: it captures it, shows its end in an error message, and checks that
// no key or token ever reached it.
package logcheck

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Buffer collects log output; it is safe for concurrent writers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// jwt matches any JSON Web Token: two base64url JSON objects and a signature.
var jwt = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

// Leak returns an error naming the first of keys, or the first token, found
// in logs; nil when there is none. The key itself is not repeated.
func Leak(logs string, keys ...string) error {
	for i, k := range keys {
		if k != "" && strings.Contains(logs, k) {
			return fmt.Errorf("key %d of %d appears in the logs", i+1, len(keys))
		}
	}
	if m := jwt.FindString(logs); m != "" {
		return fmt.Errorf("a token appears in the logs, starting %s", m[:min(len(m), 24)])
	}
	return nil
}

// LastLines returns the last n lines of log, without its final newline:
// the end of a long log, for an error message.
func LastLines(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Package wait waits for a condition to hold, with a deadline that names
// what was awaited. Tests use it instead of sleeping or of reading once what
// another process or goroutine produces in its own time.
package wait

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Deadline is how long Until waits. It is long because the suite shares two
// cores with other work; a condition that holds returns at once anyway.
const Deadline = 30 * time.Second

// For calls cond until it reports true or ctx ends, at first every
// millisecond and then less often, up to every 50 ms. The error names what
// was awaited and how long it was awaited.
func For(ctx context.Context, what string, cond func() bool) error {
	start := time.Now()
	every := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		t.Reset(every)
		select {
		case <-ctx.Done():
			if cond() {
				return nil
			}
			return fmt.Errorf("waited %s for %s: %w", time.Since(start).Round(time.Millisecond), what, ctx.Err())
		case <-t.C:
		}
		every = min(2*every, 50*time.Millisecond)
	}
}

// Until waits up to Deadline for cond, and fails the test, naming what it
// waited for, if cond never held.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	if err := For(ctx, what, cond); err != nil {
		tb.Fatal(err)
	}
}

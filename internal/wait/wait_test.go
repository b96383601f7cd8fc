package wait

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 5 {
			n.Add(1)
		}
	}()
	if err := For(context.Background(), "five steps", func() bool { return n.Load() == 5 }); err != nil {
		t.Fatal(err)
	}
}

func TestForNamesWhatItWaitedFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := For(ctx, "the moon", func() bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "for the moon") {
		t.Fatalf("err = %v; want a deadline error naming the moon", err)
	}
}

func ExampleFor() {
	ready := make(chan struct{})
	go close(ready)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := For(ctx, "the worker to start", func() bool {
		select {
		case <-ready:
			return true
		default:
			return false
		}
	})
	fmt.Println(err)
	// Output: <nil>
}

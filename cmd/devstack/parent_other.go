//go:build !linux

package main

import (
	"context"
	"os"
	"time"
)

// endWithParent ends the returned context when the parent (make) dies:
// without Linux's parent-death signal, by noticing that the process was
// handed to another parent.
func endWithParent(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	parent := os.Getppid()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}

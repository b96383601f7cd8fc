// Command soak runs the local stack as `make run` does and drives it with a
// steady mix of the API's calls (load, dry-run and meta for projects 1 and
// 2, refusals and bad inputs) at a fixed concurrency for a bounded time and
// count. It prints requests per second, answers by status, latency, and the
// memory and open descriptors of the API's and Cube's processes as the run
// goes on; it fails when any answer's status was not the expected one.
//
// Usage (what `make soak` runs):
//
//	soak -devstack bin/devstack [-concurrency 16] [-duration 10m] [-requests N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"productanalytics/internal/soak"
	"productanalytics/internal/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run() error {
	devstack := flag.String("devstack", "bin/devstack", "the `binary` make run builds")
	data := flag.String("data", "", "the events `folder` (default: devstack's, .local/events)")
	concurrency := flag.Int("concurrency", 16, "requests in flight at once")
	duration := flag.Duration("duration", 10*time.Minute, "how long to run")
	requests := flag.Int64("requests", 10_000_000, "most requests to send")
	samples := flag.Int("samples", 10, "how many times to sample the processes during the run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := stack.Root(".")
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting the local stack (devstack run)...")
	s, err := soak.StartStack(ctx, *devstack, root, *data)
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Printf("API at %s (pid %d), Cube pid %d, Cube's log %s\n", s.URL, s.API.Pid, s.Cube.Pid, s.CubeLog)
	fmt.Printf("soak: %d in flight for %s (at most %d requests)\n", *concurrency, *duration, *requests)
	res, err := soak.Run(ctx, soak.Options{
		BaseURL:     s.URL,
		Token:       func(p ...int64) string { return stack.Token(*duration+time.Hour, p...) },
		Concurrency: *concurrency,
		Duration:    *duration,
		MaxRequests: *requests,
		Samples:     *samples,
		Processes:   s.Processes(),
		LogBytes:    s.CubeLogBytes,
		Progress:    os.Stdout,
	})
	if err != nil {
		return err
	}
	fmt.Println()
	res.Report(os.Stdout, s.Processes())
	if err := s.Stop(); err != nil {
		return err
	}
	if res.Unexpected > 0 {
		return fmt.Errorf("%d answers with an unexpected status", res.Unexpected)
	}
	return nil
}

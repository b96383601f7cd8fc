package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"productanalytics/internal/wait"
	"productanalytics/shared/secrets"
)

// The options of the table tests, spelled out so that a change of a default
// does not silently change what the tests check.
const (
	ttl          = 5 * time.Minute
	staleFor     = 15 * time.Minute
	retryAfter   = 5 * time.Second
	minRefresh   = time.Second
	fetchTimeout = 5 * time.Second
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var errStore = errors.New("store is down")

// fakeStore answers every fetch with its current outcome and counts them.
type fakeStore struct {
	mu    sync.Mutex
	value string
	err   error
	calls int
}

func (s *fakeStore) fetch(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.value, s.err
}

func (s *fakeStore) set(o *outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value, s.err = o.value, o.err
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type outcome struct {
	value string
	err   error
}

func holds(v string) *outcome { return &outcome{value: v} }

var failing = &outcome{err: errStore}

type step struct {
	advance time.Duration // moves the clock before the call
	store   *outcome      // nil: the store answers as before
	refresh bool          // Refresh(used) rather than Get
	used    string

	want    string
	wantErr []error // each must be in the error's chain; nil: no error
	errHas  string
	fetches int // fetches so far, counted after the call
}

func TestCache(t *testing.T) {
	unavailable := []error{secrets.ErrUnavailable, errStore}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first get fetches", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
		}},
		{"within TTL the value is served without a fetch", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: ttl - time.Nanosecond, store: holds("k2"), want: "k1", fetches: 1},
			{want: "k1", fetches: 1},
		}},
		{"after TTL the value is fetched anew", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: ttl, store: holds("k2"), want: "k2", fetches: 2},
			{want: "k2", fetches: 2},
		}},
		{"a failing store is not asked again within RetryAfter", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: ttl, store: failing, want: "k1", fetches: 2},
			{advance: retryAfter - time.Nanosecond, want: "k1", fetches: 2},
			{advance: time.Nanosecond, want: "k1", fetches: 3},
			{advance: retryAfter, store: holds("k2"), want: "k2", fetches: 4},
		}},
		{"the stale value is served up to TTL+StaleFor", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: ttl, store: failing, want: "k1", fetches: 2},
			{advance: staleFor - time.Nanosecond, want: "k1", fetches: 3},
			// Within RetryAfter of the last failure: no fetch, and no value.
			{advance: time.Nanosecond, wantErr: unavailable, fetches: 3},
			{advance: retryAfter, wantErr: unavailable, fetches: 4},
			{advance: retryAfter, store: holds("k2"), want: "k2", fetches: 5},
		}},
		{"no value ever and a failing store", []step{
			{store: failing, wantErr: unavailable, fetches: 1},
			{advance: retryAfter - time.Nanosecond, wantErr: unavailable, fetches: 1},
			{refresh: true, wantErr: unavailable, fetches: 1},
			{advance: time.Nanosecond, store: holds("k1"), want: "k1", fetches: 2},
		}},
		{"an empty secret is an error", []step{
			{store: holds(""), wantErr: []error{secrets.ErrUnavailable}, errHas: "empty", fetches: 1},
		}},
		{"an empty secret after a good one leaves the good one served", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: ttl, store: holds(""), want: "k1", fetches: 2},
		}},
		{"refresh with a value that has already changed does not fetch", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: ttl / 2, store: holds("k2"), refresh: true, used: "k0", want: "k1", fetches: 1},
		}},
		{"refresh with the current value fetches the rotated one", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: minRefresh, store: holds("k2"), refresh: true, used: "k1", want: "k2", fetches: 2},
			{want: "k2", fetches: 2},
			// Another caller that used k1 is told of k2 without a fetch,
			// even past MinRefreshInterval.
			{advance: 2 * minRefresh, refresh: true, used: "k1", want: "k2", fetches: 2},
		}},
		{"refresh within MinRefreshInterval of the last fetch does not fetch", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{store: holds("k2"), refresh: true, used: "k1", want: "k1", fetches: 1},
			{advance: minRefresh - time.Nanosecond, refresh: true, used: "k1", want: "k1", fetches: 1},
			{advance: time.Nanosecond, refresh: true, used: "k1", want: "k2", fetches: 2},
			{refresh: true, used: "k2", want: "k2", fetches: 2},
		}},
		{"refresh before any get fetches", []step{
			{store: holds("k1"), refresh: true, used: "", want: "k1", fetches: 1},
		}},
		// A peer that keeps rejecting the key during an outage must not turn
		// every request into a fetch of the failing store.
		{"refresh during an outage is not retried within RetryAfter", []step{
			{store: holds("k1"), want: "k1", fetches: 1},
			{advance: minRefresh, store: failing, refresh: true, used: "k1", want: "k1", fetches: 2},
			{refresh: true, used: "k1", want: "k1", fetches: 2},
			{advance: retryAfter - time.Nanosecond, refresh: true, used: "k1", want: "k1", fetches: 2},
			{want: "k1", fetches: 2},
			{advance: time.Nanosecond, refresh: true, used: "k1", want: "k1", fetches: 3},
			{advance: retryAfter, store: holds("k2"), refresh: true, used: "k1", want: "k2", fetches: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock, store := newFakeClock(), &fakeStore{}
			c := secrets.NewCache(store.fetch, secrets.Options{
				TTL: ttl, StaleFor: staleFor, RetryAfter: retryAfter,
				FetchTimeout: fetchTimeout, MinRefreshInterval: minRefresh,
				Now: clock.Now,
			})
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				if s.store != nil {
					store.set(s.store)
				}
				var got string
				var err error
				if s.refresh {
					got, err = c.Refresh(t.Context(), s.used)
				} else {
					got, err = c.Get(t.Context())
				}
				if got != s.want {
					t.Errorf("step %d: value %q, want %q", i, got, s.want)
				}
				if s.wantErr == nil && err != nil {
					t.Errorf("step %d: unexpected error %v", i, err)
				}
				if s.wantErr != nil && err == nil {
					t.Errorf("step %d: no error, want one wrapping %v", i, s.wantErr)
				}
				for _, target := range s.wantErr {
					if err != nil && !errors.Is(err, target) {
						t.Errorf("step %d: error %q does not wrap %q", i, err, target)
					}
				}
				if err != nil && !strings.Contains(err.Error(), s.errHas) {
					t.Errorf("step %d: error %q does not mention %q", i, err, s.errHas)
				}
				if n := store.count(); n != s.fetches {
					t.Errorf("step %d: %d fetches so far, want %d", i, n, s.fetches)
				}
			}
		})
	}
}

func TestCacheDefaults(t *testing.T) {
	clock, store := newFakeClock(), &fakeStore{value: "k1"}
	c := secrets.NewCache(store.fetch, secrets.Options{Now: clock.Now})
	get := func() {
		t.Helper()
		if v, err := c.Get(t.Context()); v != "k1" || err != nil {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	get()
	clock.Advance(5*time.Minute - time.Nanosecond)
	get()
	if n := store.count(); n != 1 {
		t.Fatalf("%d fetches within the default TTL of 5m, want 1", n)
	}
	clock.Advance(time.Nanosecond)
	get()
	if n := store.count(); n != 2 {
		t.Fatalf("%d fetches at the default TTL of 5m, want 2", n)
	}
}

// waitingCtx counts calls of Done, which a caller blocked on the fetch in
// flight makes while it waits: a barrier that needs no sleep.
type waitingCtx struct {
	context.Context
	waiting atomic.Int32
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.waiting.Add(1)
	return c.Context.Done()
}

// blockingFetcher is a slow store: each fetch is announced on entered and
// returns once release is closed.
type blockingFetcher struct {
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32

	mu     sync.Mutex
	ctxErr error // the fetch context's Err when the fetch returned
}

func newBlockingFetcher() *blockingFetcher {
	return &blockingFetcher{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (f *blockingFetcher) fetch(ctx context.Context) (string, error) {
	f.calls.Add(1)
	f.entered <- struct{}{}
	<-f.release
	f.mu.Lock()
	f.ctxErr = ctx.Err()
	f.mu.Unlock()
	return "k1", nil
}

func TestCacheCoalescesConcurrentGets(t *testing.T) {
	f := newBlockingFetcher()
	c := secrets.NewCache(f.fetch, secrets.Options{Now: newFakeClock().Now})
	ctx := &waitingCtx{Context: t.Context()}

	const n = 50
	type result struct {
		v   string
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			v, err := c.Get(ctx)
			results <- result{v, err}
		}()
	}
	// Should Gets not be coalesced, the extra fetches show up in calls.
	wait.Until(t, fmt.Sprintf("%d Gets waiting on one fetch", n), func() bool { return ctx.waiting.Load() >= n || f.calls.Load() > 1 })
	close(f.release)
	for range n {
		if r := <-results; r.v != "k1" || r.err != nil {
			t.Errorf("Get = %q, %v; want k1", r.v, r.err)
		}
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("%d concurrent Gets made %d fetches, want 1", n, got)
	}
}

func TestCacheCallerGivingUpDoesNotFailOthers(t *testing.T) {
	f := newBlockingFetcher()
	c := secrets.NewCache(f.fetch, secrets.Options{Now: newFakeClock().Now})

	quitter, quit := context.WithCancel(t.Context())
	quitterErr := make(chan error, 1)
	go func() {
		_, err := c.Get(quitter)
		quitterErr <- err
	}()
	<-f.entered

	patient := &waitingCtx{Context: t.Context()}
	patientGot := make(chan string, 1)
	go func() {
		v, err := c.Get(patient)
		if err != nil {
			v = "error: " + err.Error()
		}
		patientGot <- v
	}()
	wait.Until(t, "the second Get to wait on the fetch", func() bool { return patient.waiting.Load() > 0 })

	quit()
	select {
	case err := <-quitterErr:
		if !errors.Is(err, secrets.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Get: err = %v, want ErrUnavailable and context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled Get still waits for the fetch")
	}

	close(f.release)
	if v := <-patientGot; v != "k1" {
		t.Errorf("the other Get got %q, want k1", v)
	}
	f.mu.Lock()
	err := f.ctxErr
	f.mu.Unlock()
	if err != nil {
		t.Errorf("the fetch's context ended with the caller's: %v", err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}

func TestCacheFetchTimeout(t *testing.T) {
	var deadlineSet atomic.Bool
	hang := func(ctx context.Context) (string, error) {
		_, ok := ctx.Deadline()
		deadlineSet.Store(ok)
		<-ctx.Done()
		return "", ctx.Err()
	}
	c := secrets.NewCache(hang, secrets.Options{FetchTimeout: 50 * time.Millisecond})
	// Bounded by the caller too, so that a cache without a fetch timeout
	// fails this test instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx)
	if !errors.Is(err, secrets.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want ErrUnavailable and context.DeadlineExceeded", err)
	}
	if !deadlineSet.Load() {
		t.Error("the fetch's context has no deadline")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hanging store held Get for %v", d)
	}
}

func TestPrefetch(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	c := secrets.NewCache(func(context.Context) (string, error) {
		calls.Add(1)
		<-release
		return "v", nil
	}, secrets.Options{})
	c.Prefetch()
	c.Prefetch() // joins the fetch on its way
	close(release)
	if v, err := c.Get(context.Background()); err != nil || v != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	c.Prefetch() // cached: no fetch
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d fetches; want 1", n)
	}
}

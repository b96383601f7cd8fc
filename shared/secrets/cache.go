// Package secrets serves secret values (the Cube API key, the caller-token
// key) from a fetcher such as AWS Secrets Manager, cached so that the store is
// asked at most once per cache period and rotation-aware so that a rotated key
// is picked up as soon as a peer rejects the old one.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Fetcher fetches the current value of one secret.
type Fetcher func(ctx context.Context) (string, error)

// The defaults of Options' TTL and StaleFor, which a zero value takes.
const (
	DefaultTTL      = 5 * time.Minute
	DefaultStaleFor = 15 * time.Minute
)

// Options tune a Cache. Zero values take the defaults.
type Options struct {
	// TTL is how long a fetched value is served without asking again.
	TTL time.Duration
	// StaleFor is how long past its TTL a value is still served while the
	// store fails; past that, Get fails.
	StaleFor time.Duration
	// RetryAfter is how long after a failed fetch the next one is tried,
	// serving the stale value meanwhile, so that an outage is not hammered
	// (default 5s).
	RetryAfter time.Duration
	// FetchTimeout bounds one fetch (default 5s).
	FetchTimeout time.Duration
	// MinRefreshInterval bounds how often Refresh forces a fetch, so a peer
	// that keeps rejecting a key cannot turn every request into a fetch
	// (default 1s).
	MinRefreshInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ErrUnavailable is wrapped by every error of a Cache that has no value to
// serve.
var ErrUnavailable = errors.New("secret unavailable")

// Cache holds one secret's value. It is safe for concurrent use; concurrent
// fetches are coalesced into one.
type Cache struct {
	fetch Fetcher
	opts  Options

	mu        sync.Mutex
	value     string
	fetchedAt time.Time // zero: never fetched
	failedAt  time.Time // last failed fetch, zero after a success
	lastErr   error
	inflight  *call
}

type call struct {
	done  chan struct{}
	value string
	err   error
}

// NewCache returns a Cache over fetch. Nothing is fetched until the first Get.
func NewCache(fetch Fetcher, opts Options) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.StaleFor <= 0 {
		opts.StaleFor = DefaultStaleFor
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 5 * time.Second
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 5 * time.Second
	}
	if opts.MinRefreshInterval <= 0 {
		opts.MinRefreshInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{fetch: fetch, opts: opts}
}

// Get returns the secret's value: the cached one while fresh, else a newly
// fetched one; while the store fails, the last good value for up to StaleFor.
func (c *Cache) Get(ctx context.Context) (string, error) {
	c.mu.Lock()
	now := c.opts.Now()
	if c.has() && now.Before(c.fetchedAt.Add(c.opts.TTL)) {
		v := c.value
		c.mu.Unlock()
		return v, nil
	}
	if c.has() && !c.failedAt.IsZero() && now.Before(c.failedAt.Add(c.opts.RetryAfter)) {
		v, err := c.staleLocked(now)
		c.mu.Unlock()
		return v, err
	}
	if c.inflight == nil && !c.failedAt.IsZero() && now.Before(c.failedAt.Add(c.opts.RetryAfter)) {
		err := c.lastErr
		c.mu.Unlock()
		return "", err
	}
	cl := c.startLocked()
	c.mu.Unlock()
	return c.wait(ctx, cl)
}

// Prefetch starts fetching the value, unless one is cached or on its way,
// and returns at once. Called at cold start, it overlaps the first fetches
// with the rest of start-up instead of leaving them to the first request.
func (c *Cache) Prefetch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.has() && c.failedAt.IsZero() {
		c.startLocked()
	}
}

// Refresh is called when a peer rejected the value used. Unless the value
// has already changed since, or was fetched moments ago, it fetches anew,
// and returns the value to retry with.
func (c *Cache) Refresh(ctx context.Context, used string) (string, error) {
	c.mu.Lock()
	now := c.opts.Now()
	if c.has() && (c.value != used || now.Before(c.fetchedAt.Add(c.opts.MinRefreshInterval))) {
		v := c.value
		c.mu.Unlock()
		return v, nil
	}
	// As in Get: a store that failed moments ago is not asked again before
	// RetryAfter, or a peer rejecting the key during an outage would turn
	// every request into a fetch.
	if !c.failedAt.IsZero() && now.Before(c.failedAt.Add(c.opts.RetryAfter)) {
		v, err := c.staleLocked(now)
		c.mu.Unlock()
		return v, err
	}
	cl := c.startLocked()
	c.mu.Unlock()
	return c.wait(ctx, cl)
}

func (c *Cache) has() bool { return !c.fetchedAt.IsZero() }

// staleLocked serves the last good value within StaleFor past its TTL.
func (c *Cache) staleLocked(now time.Time) (string, error) {
	if c.has() && now.Before(c.fetchedAt.Add(c.opts.TTL+c.opts.StaleFor)) {
		return c.value, nil
	}
	return "", c.lastErr
}

// startLocked joins the fetch in flight or starts one. The fetch runs on a
// context of its own so that one caller giving up does not fail the others.
func (c *Cache) startLocked() *call {
	if c.inflight != nil {
		return c.inflight
	}
	cl := &call{done: make(chan struct{})}
	c.inflight = cl
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.FetchTimeout)
		v, err := c.fetch(ctx)
		cancel()
		c.mu.Lock()
		now := c.opts.Now()
		if err == nil && v == "" {
			err = errors.New("the secret is empty")
		}
		if err != nil {
			c.failedAt = now
			c.lastErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
			cl.value, cl.err = c.staleLocked(now)
		} else {
			c.value, c.fetchedAt, c.failedAt, c.lastErr = v, now, time.Time{}, nil
			cl.value = v
		}
		c.inflight = nil
		c.mu.Unlock()
		close(cl.done)
	}()
	return cl
}

func (c *Cache) wait(ctx context.Context, cl *call) (string, error) {
	select {
	case <-cl.done:
		return cl.value, cl.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: waiting for the secret: %w", ErrUnavailable, ctx.Err())
	}
}

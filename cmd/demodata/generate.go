package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Behaviour knobs. They are package constants rather than flags: the point
// is believable dashboards, not a simulation toolkit.
const (
	// sessionTimeout is Snowplow's default inactivity timeout; the generator
	// keeps in-session gaps below it and between-session gaps above it, so a
	// sessionisation of the events reproduces domain_sessionid.
	sessionTimeout = 30 * time.Minute
	minVisitGap    = 45 * time.Minute
	maxDwell       = 20 * time.Minute

	returningShare  = 0.40 // users who plan more than one visit
	knownIfOneOff   = 0.20 // signed-in share among one-visit users
	knownIfReturner = 0.45 // regulars sign in more often
	bounceRate      = 0.38 // sessions with a single page view
	pingShare       = 0.25 // page views whose page sends page pings
	pingInterval    = 30 * time.Second
	maxPings        = 2
	internalClick   = 0.35 // page changes made through a tracked link
	outboundClick   = 0.12 // sessions ending on a tracked outbound link

	// warmUp starts visitors' histories before the window, so returning
	// visits are already in full swing on its first day instead of ramping
	// up over the first weeks. Visits before the window are simulated but
	// not emitted, and domain_sessionidx counts only emitted sessions, so
	// every visitor's first visible session is 1.
	warmUp = 21 * 24 * time.Hour

	// edgeMargin keeps derived_tstamp this far inside the window so the
	// collector latency and device clock skew cannot push the other
	// timestamps outside it.
	edgeMargin = 5 * time.Second
)

// ProjectConfig is one project's share of the demo data.
type ProjectConfig struct {
	ID int64
	// Index is the project's position on the command line; it picks the
	// site template so the default projects get different sites.
	Index  int
	Events int
	Start  time.Time
	End    time.Time
	Seed   uint64
	// WholeSeconds writes timestamps without their milliseconds, for a
	// store that keeps whole seconds (ClickHouse's DateTime): the same
	// events then load alike into DuckDB and it.
	WholeSeconds bool
}

// Stats summarises what Generate produced.
type Stats struct {
	Host           string
	Events         int
	PageViews      int
	Sessions       int
	Users          int // distinct domain_userid
	KnownUsers     int // users with a user_id
	ReturningUsers int // users with more than one session
}

// errTargetReached ends generation once the requested event count is out.
var errTargetReached = errors.New("target event count reached")

// Generate streams cfg.Events synthetic events to emit, user by user and in
// time order within each user. The *Event is reused: emit must not keep it.
// An error from emit stops generation and is returned.
func Generate(cfg ProjectConfig, emit func(*Event) error) (Stats, error) {
	if cfg.Events <= 0 {
		return Stats{}, fmt.Errorf("project %d: event count must be positive", cfg.ID)
	}
	if cfg.End.Sub(cfg.Start) <= 4*edgeMargin {
		return Stats{}, fmt.Errorf("project %d: time window too short", cfg.ID)
	}
	// One stream per project: adding a project leaves the others unchanged.
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.ID)))
	g := &generator{
		cfg:  cfg,
		r:    r,
		from: cfg.Start.Add(edgeMargin),
		to:   cfg.End.Add(-edgeMargin),
		emit: emit,
	}
	g.site = newSite(r, cfg.ID, cfg.Index, cfg.Start, cfg.End)
	g.pathIndex = make(map[string]int, len(g.site.pages))
	for i, p := range g.site.pages {
		g.pathIndex[p.path] = i
	}
	g.stats.Host = g.site.host
	for {
		if err := g.user(); err != nil {
			if errors.Is(err, errTargetReached) {
				return g.stats, nil
			}
			return g.stats, err
		}
	}
}

// generator holds one project's generation state.
type generator struct {
	cfg       ProjectConfig
	r         *rand.Rand
	site      *site
	pathIndex map[string]int // lookups only, never iterated
	from, to  time.Time      // bounds for derived_tstamp
	emit      func(*Event) error
	ev        Event
	stats     Stats
}

// visitor is one browser cookie, optionally signed in.
type visitor struct {
	cookie   string
	userID   string
	props    string
	dev      userDevice
	skew     time.Duration // device clock error
	visits   int           // planned sessions
	gap      float64       // median hours between sessions
	sessions int           // sessions emitted so far
}

// user simulates one visitor's sessions over the window.
func (g *generator) user() error {
	r := g.r
	v := &visitor{cookie: newUUID(r), dev: newUserDevice(r, g.cfg.End), visits: 1}
	returning := chance(r, returningShare)
	if returning {
		v.visits = min(2+geometric(r, 3), 40)
		v.gap = logNormal(r, 30, 0.8)
	}
	known := knownIfOneOff
	if returning {
		known = knownIfReturner
	}
	if chance(r, known) {
		v.userID = fmt.Sprintf("%016x", r.Uint64())
		v.props = g.site.userProps(r)
	}
	v.skew = time.Duration(max(-4, min(4, r.NormFloat64()*0.8)) * float64(time.Second))

	// Short windows get a shorter warm-up so most visitors still land in them.
	warm := min(warmUp, g.to.Sub(g.from))
	t := g.site.rhythm.sampleTime(r, g.from.Add(-warm), g.to)
	for i := range v.visits {
		if i > 0 {
			var ok bool
			if t, ok = g.nextVisit(v, t); !ok {
				return nil
			}
		}
		last, err := g.session(v, t)
		if err != nil || last.IsZero() {
			return err
		}
		t = last
	}
	return nil
}

// nextVisit picks when a returning visitor comes back after last, or false
// when that falls beyond the window.
func (g *generator) nextVisit(v *visitor, last time.Time) (time.Time, bool) {
	for range 50 {
		hours := logNormal(g.r, v.gap, 1.0)
		t := last.Add(max(minVisitGap, time.Duration(hours*float64(time.Hour))))
		// Thin first, then check the window: testing the window first would
		// end visitors early near its end, where retries often overshoot.
		if g.site.rhythm.accept(g.r, t) {
			return t, t.Before(g.to)
		}
	}
	return time.Time{}, false
}

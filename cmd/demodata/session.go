package main

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// scheduled is an event planned within a page view.
type scheduled struct {
	at   time.Duration // after the page view
	kind int
}

const (
	kindPing = iota
	kindCustom
	kindInternalClick
	kindOutboundClick
)

// session emits one session starting at start and returns the time of its
// last event, or the zero time when the window ended inside it.
func (g *generator) session(v *visitor, start time.Time) (time.Time, error) {
	r, s := g.r, g.site
	sid := newUUID(r)
	// Warm-up sessions shape the visitor's timeline but stay invisible.
	hidden := start.Before(g.from)
	pages := 1
	if !chance(r, bounceRate) {
		pages = min(2+geometric(r, 3), 30)
	}
	idx := v.sessions + 1
	ref := s.referrers.pick(r)
	cur := s.landing.pick(r)
	t, last := start, start
	var plan []scheduled
	for i := range pages {
		p := &s.pages[cur]
		pageURL := "https://" + s.host + p.path
		page := func(e *Event) {
			e.PageURL, e.PageURLHost, e.PageURLPath, e.PageTitle, e.PageReferrer = pageURL, s.host, p.path, p.title, ref
		}
		dwell := time.Duration(logNormal(r, 35, 1.1) * float64(time.Second))
		dwell = max(3*time.Second, min(maxDwell, dwell)).Round(time.Millisecond)

		plan = plan[:0]
		if chance(r, pingShare) {
			for k := 1; k <= maxPings && time.Duration(k)*pingInterval < dwell-2*time.Second; k++ {
				plan = append(plan, scheduled{time.Duration(k) * pingInterval, kindPing})
			}
		}
		var ce *customEvent
		if chance(r, s.customEventRate) {
			if ce = s.pickCustomEvent(r, p); ce != nil {
				plan = append(plan, scheduled{time.Duration((0.15 + 0.7*r.Float64()) * float64(dwell)), kindCustom})
			}
		}
		next := -1
		if i < pages-1 {
			next = g.nextPage(cur, ce)
			if chance(r, internalClick) {
				plan = append(plan, scheduled{dwell - time.Duration((0.2+1.3*r.Float64())*float64(time.Second)), kindInternalClick})
			}
		} else if chance(r, outboundClick) {
			plan = append(plan, scheduled{time.Duration((0.5 + 0.45*r.Float64()) * float64(dwell)), kindOutboundClick})
		}
		slices.SortStableFunc(plan, func(a, b scheduled) int { return cmp.Compare(a.at, b.at) })

		// The page view itself, then what happened on the page.
		if t.After(g.to) {
			return time.Time{}, nil
		}
		if err := g.send(v, sid, idx, hidden, t, func(e *Event) {
			e.Event, e.EventName = "page_view", "page_view"
			page(e)
		}); err != nil {
			return time.Time{}, err
		}
		last = t
		for _, sc := range plan {
			at := t.Add(sc.at)
			if at.After(g.to) {
				return time.Time{}, nil
			}
			var fill func(e *Event)
			switch sc.kind {
			case kindPing:
				fill = func(e *Event) { e.Event, e.EventName = "page_ping", "page_ping"; page(e) }
			case kindCustom:
				props := ce.props(r, p)
				fill = func(e *Event) {
					e.Event, e.EventName = "unstruct", "custom_event"
					page(e)
					e.CustomEventName, e.CustomEventProps = ce.name, props
				}
			case kindInternalClick:
				target, el := "https://"+s.host+s.pages[next].path, oneOf(r, s.internalElements...)
				fill = func(e *Event) {
					e.Event, e.EventName = "unstruct", "link_click"
					page(e)
					e.TargetURL, e.ElementID = target, el
				}
			case kindOutboundClick:
				l := oneOf(r, s.outbound...)
				fill = func(e *Event) {
					e.Event, e.EventName = "unstruct", "link_click"
					page(e)
					e.TargetURL, e.ElementID = l.url, l.elementID
				}
			}
			if err := g.send(v, sid, idx, hidden, at, fill); err != nil {
				return time.Time{}, err
			}
			last = at
		}
		if next < 0 {
			break
		}
		ref, cur = pageURL, next
		t = t.Add(dwell)
	}
	return last, nil
}

// nextPage picks the page after cur: often the funnel step a custom event
// leads to, else a popular page other than the current one.
func (g *generator) nextPage(cur int, ce *customEvent) int {
	if ce != nil && ce.next != "" && chance(g.r, 0.6) {
		if j, ok := g.pathIndex[ce.next]; ok {
			return j
		}
	}
	for range 4 {
		if j := g.site.popularity.pick(g.r); j != cur {
			return j
		}
	}
	return (cur + 1) % len(g.site.pages)
}

// send fills the shared columns of one event at time at, lets fill add the
// event-specific ones, and emits it unless the session is hidden (warm-up). Session and user counters advance on
// the first event that is actually emitted, so stats match the output even
// when the target count cuts a visitor short.
func (g *generator) send(v *visitor, sid string, idx int, hidden bool, at time.Time, fill func(*Event)) error {
	if g.stats.Events >= g.cfg.Events {
		return errTargetReached
	}
	if hidden {
		return nil
	}
	r := g.r
	at = at.Truncate(time.Millisecond)
	latency := 40*time.Millisecond + time.Duration(math.Min(r.ExpFloat64()*0.2, 3)*float64(time.Second))
	e := &g.ev
	*e = Event{
		AppID:             g.site.appID,
		Platform:          "web",
		EventID:           newUUID(r),
		DerivedTstamp:     at,
		CollectorTstamp:   at.Add(latency).Truncate(time.Millisecond),
		DvceCreatedTstamp: at.Add(v.skew).Truncate(time.Millisecond),
		UserID:            v.userID,
		DomainUserID:      v.cookie,
		DomainSessionID:   sid,
		DomainSessionIdx:  idx,
		Useragent:         v.dev.ua,
		AgentName:         v.dev.d.agentName,
		AgentVersion:      v.dev.version,
		OSFamily:          v.dev.d.osFamily,
		OSName:            v.dev.d.osName,
		OSVersion:         v.dev.d.osVersion,
		OSVersionMajor:    v.dev.d.osMajor,
		BrLang:            v.dev.lang,
		DocLang:           g.site.docLang,
		ViewportSize:      v.dev.viewport,
		CustomUserProps:   v.props,
	}
	fill(e)
	if err := g.emit(e); err != nil {
		return err
	}
	g.stats.Events++
	if e.Event == "page_view" {
		g.stats.PageViews++
	}
	if idx > v.sessions {
		v.sessions = idx
		g.stats.Sessions++
		switch idx {
		case 1:
			g.stats.Users++
			if v.userID != "" {
				g.stats.KnownUsers++
			}
		case 2:
			g.stats.ReturningUsers++
		}
	}
	return nil
}

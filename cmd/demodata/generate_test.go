package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDeterminism(t *testing.T) {
	base := testConfig(1, 3000, 1)
	want, _ := generateCSV(t, base)
	tests := []struct {
		name   string
		change func(*ProjectConfig)
		same   bool
	}{
		{"same inputs", func(*ProjectConfig) {}, true},
		{"other seed", func(c *ProjectConfig) { c.Seed = 2 }, false},
		{"other end", func(c *ProjectConfig) { c.End = c.End.Add(time.Hour); c.Start = c.Start.Add(time.Hour) }, false},
		{"other project", func(c *ProjectConfig) { c.ID = 2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			got, _ := generateCSV(t, cfg)
			if same := bytes.Equal(got, want); same != tt.same {
				t.Errorf("identical output = %v, want %v", same, tt.same)
			}
		})
	}
}

func TestEventCounts(t *testing.T) {
	tests := []struct {
		name   string
		events int
		days   int
	}{
		{"single event", 1, 30},
		{"small", 200, 30},
		{"medium", 5000, 30},
		{"large", 40000, 30},
		{"one day", 3000, 1},
		{"long window", 3000, 365},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(1, tt.events, 1)
			cfg.Start = cfg.End.AddDate(0, 0, -tt.days)
			data, stats := generateCSV(t, cfg)
			_, rows := parseCSV(t, data)
			if stats.Events != len(rows) {
				t.Errorf("stats say %d events, CSV has %d", stats.Events, len(rows))
			}
			lo, hi := float64(tt.events)*0.9, float64(tt.events)*1.1
			if n := float64(len(rows)); n < lo || n > hi {
				t.Errorf("got %d events, want %d ±10%%", len(rows), tt.events)
			}
		})
	}
}

func TestTimestampsWithinWindow(t *testing.T) {
	for _, days := range []int{1, 30} {
		cfg := testConfig(2, 8000, 3)
		cfg.Start = cfg.End.AddDate(0, 0, -days)
		data, _ := generateCSV(t, cfg)
		_, rows := parseCSV(t, data)
		for i, r := range rows {
			derived := ts(t, r, "derived_tstamp")
			collector := ts(t, r, "collector_tstamp")
			dvce := ts(t, r, "dvce_created_tstamp")
			for col, v := range map[string]time.Time{"derived": derived, "collector": collector, "dvce_created": dvce} {
				if v.After(cfg.End) || v.Before(cfg.Start) {
					t.Fatalf("days=%d row %d: %s_tstamp %v outside [%v, %v]", days, i, col, v, cfg.Start, cfg.End)
				}
			}
			if !collector.After(derived) || collector.Sub(derived) > 5*time.Second {
				t.Fatalf("row %d: collector %v not slightly after derived %v", i, collector, derived)
			}
			if d := dvce.Sub(derived).Abs(); d > 5*time.Second {
				t.Fatalf("row %d: dvce_created %v is %v from derived %v", i, dvce, d, derived)
			}
		}
	}
}

// sessionView is one session as reconstructed from the rows.
type sessionView struct {
	id          string
	user        string
	idx         int
	first, last time.Time
}

func TestSessions(t *testing.T) {
	data, stats := generateCSV(t, testConfig(1, 30000, 5))
	_, rows := parseCSV(t, data)

	// Rows are emitted user by user in time order; check that, then walk it.
	sessions := map[string]*sessionView{}
	var order []*sessionView
	prev := map[string]time.Time{} // last event per session
	for i, r := range rows {
		sid, user := r["domain_sessionid"], r["domain_userid"]
		at := ts(t, r, "derived_tstamp")
		idx, err := strconv.Atoi(r["domain_sessionidx"])
		if err != nil {
			t.Fatalf("row %d: domain_sessionidx %q", i, r["domain_sessionidx"])
		}
		s, ok := sessions[sid]
		if !ok {
			s = &sessionView{id: sid, user: user, idx: idx, first: at, last: at}
			sessions[sid] = s
			order = append(order, s)
		} else {
			if s.user != user || s.idx != idx {
				t.Fatalf("row %d: session %s changes user or index", i, sid)
			}
			if at.Before(prev[sid]) {
				t.Fatalf("row %d: session %s goes back in time", i, sid)
			}
			if gap := at.Sub(prev[sid]); gap >= sessionTimeout {
				t.Fatalf("row %d: %v gap inside session %s", i, gap, sid)
			}
			s.last = at
		}
		prev[sid] = at
	}
	if len(sessions) != stats.Sessions {
		t.Errorf("stats say %d sessions, CSV has %d", stats.Sessions, len(sessions))
	}

	byUser := map[string][]*sessionView{}
	var users []string
	for _, s := range order {
		if _, ok := byUser[s.user]; !ok {
			users = append(users, s.user)
		}
		byUser[s.user] = append(byUser[s.user], s)
	}
	if len(users) != stats.Users {
		t.Errorf("stats say %d users, CSV has %d", stats.Users, len(users))
	}
	returning := 0
	for _, u := range users {
		ss := byUser[u]
		slices.SortFunc(ss, func(a, b *sessionView) int { return a.first.Compare(b.first) })
		for i, s := range ss {
			if s.idx != i+1 {
				t.Fatalf("user %s: session %d has domain_sessionidx %d", u, i+1, s.idx)
			}
			if i > 0 {
				if gap := s.first.Sub(ss[i-1].last); gap < sessionTimeout {
					t.Fatalf("user %s: sessions %d and %d only %v apart", u, i, i+1, gap)
				}
			}
		}
		if len(ss) > 1 {
			returning++
		}
	}
	if returning != stats.ReturningUsers {
		t.Errorf("stats say %d returning users, CSV has %d", stats.ReturningUsers, returning)
	}
	if share := float64(returning) / float64(len(users)); share < 0.15 || share > 0.6 {
		t.Errorf("returning users %.0f%%, want 15-60%%", share*100)
	}
	if perUser := float64(len(sessions)) / float64(len(users)); perUser < 1.3 || perUser > 4 {
		t.Errorf("%.2f sessions per user, want 1.3-4", perUser)
	}
}

func TestEventMix(t *testing.T) {
	for _, id := range []int64{1, 2, 3} {
		cfg := testConfig(id, 10000, 1)
		cfg.Index = int(id - 1) // each site template
		data, stats := generateCSV(t, cfg)
		_, rows := parseCSV(t, data)
		names := map[string]int{}
		for _, r := range rows {
			names[r["event_name"]]++
		}
		t.Logf("%s: %v", stats.Host, names)
		if pv := names["page_view"]; pv*2 <= len(rows) || pv != stats.PageViews {
			t.Errorf("%s: %d page views of %d events (stats %d), want the majority", stats.Host, pv, len(rows), stats.PageViews)
		}
		for _, want := range []string{"link_click", "custom_event"} {
			if names[want] < len(rows)/100 {
				t.Errorf("%s: only %d %s events", stats.Host, names[want], want)
			}
		}
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestColumnValues(t *testing.T) {
	data, _ := generateCSV(t, testConfig(2, 10000, 9))
	_, rows := parseCSV(t, data)
	ids := map[string]bool{}
	known := map[string]bool{}
	users := map[string]bool{}
	for i, r := range rows {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("row %d (%s): %s", i, r["event_name"], fmt.Sprintf(format, args...))
		}
		if !uuidRE.MatchString(r["event_id"]) || !uuidRE.MatchString(r["domain_sessionid"]) || !uuidRE.MatchString(r["domain_userid"]) {
			fail("ids not UUIDs: %q %q %q", r["event_id"], r["domain_sessionid"], r["domain_userid"])
		}
		if ids[r["event_id"]] {
			fail("duplicate event_id %s", r["event_id"])
		}
		ids[r["event_id"]] = true
		users[r["domain_userid"]] = true
		if r["user_id"] != "" {
			known[r["domain_userid"]] = true
		}

		isClick := r["event_name"] == "link_click"
		isCustom := r["event_name"] == "custom_event"
		if (r["event"] == "unstruct") != (isClick || isCustom) {
			fail("event %q with event_name %q", r["event"], r["event_name"])
		}
		if isClick != (r["target_url"] != "" && r["element_id"] != "") || (!isClick && (r["target_url"] != "" || r["element_id"] != "")) {
			fail("target_url %q element_id %q", r["target_url"], r["element_id"])
		}
		if isCustom != (r["custom_event_name"] != "") || (!isCustom && r["custom_event_props"] != "") {
			fail("custom_event_name %q props %q", r["custom_event_name"], r["custom_event_props"])
		}
		if isCustom && !isJSONObject(r["custom_event_props"]) {
			fail("custom_event_props %q not a JSON object", r["custom_event_props"])
		}
		if (r["user_id"] != "") != (r["custom_user_props"] != "") {
			fail("user_id %q but custom_user_props %q", r["user_id"], r["custom_user_props"])
		}
		if r["custom_user_props"] != "" && !isJSONObject(r["custom_user_props"]) {
			fail("custom_user_props %q not a JSON object", r["custom_user_props"])
		}
		if r["page_url"] != "https://"+r["page_urlhost"]+r["page_urlpath"] {
			fail("page_url %q does not match host %q and path %q", r["page_url"], r["page_urlhost"], r["page_urlpath"])
		}
		if !strings.Contains(r["useragent"], r["agent_version"]) {
			fail("useragent %q lacks agent_version %q", r["useragent"], r["agent_version"])
		}
		mobile := r["os_family"] == "iOS" || r["os_family"] == "Android"
		w, _, _ := strings.Cut(r["viewport_size"], "x")
		if width, err := strconv.Atoi(w); err != nil || mobile != (width < 600) {
			fail("viewport %q on %s", r["viewport_size"], r["os_family"])
		}
	}
	if share := float64(len(known)) / float64(len(users)); share < 0.15 || share > 0.45 {
		t.Errorf("known users %.0f%%, want about 30%%", share*100)
	}
}

func TestGenerateRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ProjectConfig
	}{
		{"no events", testConfig(1, 0, 1)},
		{"empty window", ProjectConfig{ID: 1, Events: 10, Start: testEnd, End: testEnd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Generate(tt.cfg, func(*Event) error { return nil }); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func isJSONObject(s string) bool {
	var m map[string]any
	return json.Unmarshal([]byte(s), &m) == nil
}

func BenchmarkWriteCSV100k(b *testing.B) {
	for b.Loop() {
		generateCSV(b, testConfig(1, 100000, 1))
	}
}

package main

import (
	"strconv"
	"strings"
	"time"
)

// tstampLayout is the timestamp text DuckDB's CSV reader parses as TIMESTAMP
// without a format hint; milliseconds match Snowplow's precision.
const tstampLayout = "2006-01-02 15:04:05.000"

// Event is one row of snowplow_events. Empty strings mean NULL: the CSV
// writer emits them as empty unquoted fields, which the loader reads as NULL,
// so a non-NULL value must never be the empty string.
type Event struct {
	AppID             string
	Platform          string
	EventID           string
	Event             string
	EventName         string
	CollectorTstamp   time.Time
	DvceCreatedTstamp time.Time // zero means NULL
	DerivedTstamp     time.Time
	UserID            string
	DomainUserID      string
	DomainSessionID   string
	DomainSessionIdx  int
	PageURL           string
	PageURLHost       string
	PageURLPath       string
	PageTitle         string
	PageReferrer      string
	Useragent         string
	AgentName         string
	AgentVersion      string
	OSFamily          string
	OSName            string
	OSVersion         string
	OSVersionMajor    string
	BrLang            string
	DocLang           string
	ViewportSize      string
	TargetURL         string
	ElementID         string
	CustomEventName   string
	CustomEventProps  string
	CustomUserProps   string
}

// column binds a DDL column name to the Event field that fills it. Keeping
// name and accessor in one table means the header and the row can never
// disagree; the tests compare the names against the DDL file.
type column struct {
	name string
	get  func(e *Event) string
}

// columns lists snowplow_events' columns in DDL order.
var columns = []column{
	{"app_id", func(e *Event) string { return e.AppID }},
	{"platform", func(e *Event) string { return e.Platform }},
	{"event_id", func(e *Event) string { return e.EventID }},
	{"event", func(e *Event) string { return e.Event }},
	{"event_name", func(e *Event) string { return e.EventName }},
	{"collector_tstamp", func(e *Event) string { return formatTstamp(e.CollectorTstamp) }},
	{"dvce_created_tstamp", func(e *Event) string { return formatTstamp(e.DvceCreatedTstamp) }},
	{"derived_tstamp", func(e *Event) string { return formatTstamp(e.DerivedTstamp) }},
	{"user_id", func(e *Event) string { return e.UserID }},
	{"domain_userid", func(e *Event) string { return e.DomainUserID }},
	{"domain_sessionid", func(e *Event) string { return e.DomainSessionID }},
	{"domain_sessionidx", func(e *Event) string { return strconv.Itoa(e.DomainSessionIdx) }},
	{"page_url", func(e *Event) string { return e.PageURL }},
	{"page_urlhost", func(e *Event) string { return e.PageURLHost }},
	{"page_urlpath", func(e *Event) string { return e.PageURLPath }},
	{"page_title", func(e *Event) string { return e.PageTitle }},
	{"page_referrer", func(e *Event) string { return e.PageReferrer }},
	{"useragent", func(e *Event) string { return e.Useragent }},
	{"agent_name", func(e *Event) string { return e.AgentName }},
	{"agent_version", func(e *Event) string { return e.AgentVersion }},
	{"os_family", func(e *Event) string { return e.OSFamily }},
	{"os_name", func(e *Event) string { return e.OSName }},
	{"os_version", func(e *Event) string { return e.OSVersion }},
	{"os_version_major", func(e *Event) string { return e.OSVersionMajor }},
	{"br_lang", func(e *Event) string { return e.BrLang }},
	{"doc_lang", func(e *Event) string { return e.DocLang }},
	{"viewport_size", func(e *Event) string { return e.ViewportSize }},
	{"target_url", func(e *Event) string { return e.TargetURL }},
	{"element_id", func(e *Event) string { return e.ElementID }},
	{"custom_event_name", func(e *Event) string { return e.CustomEventName }},
	{"custom_event_props", func(e *Event) string { return e.CustomEventProps }},
	{"custom_user_props", func(e *Event) string { return e.CustomUserProps }},
}

// header returns the CSV header row.
func header() []string {
	h := make([]string, len(columns))
	for i, c := range columns {
		h[i] = c.name
	}
	return h
}

// tstampColumns returns the positions of the timestamp columns.
func tstampColumns() []int {
	var out []int
	for i, c := range columns {
		if strings.HasSuffix(c.name, "_tstamp") {
			out = append(out, i)
		}
	}
	return out
}

// record fills rec (len(columns) long) with e's values, reusing the slice so
// streaming rows does not allocate one per event.
func (e *Event) record(rec []string) {
	for i, c := range columns {
		rec[i] = c.get(e)
	}
}

// formatTstamp renders t in UTC; the zero time is NULL.
func formatTstamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(tstampLayout)
}

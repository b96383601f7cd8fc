package volume

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// event is what the dashboards read of one generated event.
type event struct {
	at         time.Time // derived_tstamp, UTC
	kind       string    // event
	user       string    // domain_userid
	session    string    // domain_sessionid
	sessionIdx int       // domain_sessionidx
	// Optional columns: nil is NULL.
	pageURL, pagePath, agentName, agentVersion *string
}

// csvTime is the generator's timestamp text, with or without milliseconds.
const csvTime = "2006-01-02 15:04:05.999"

// readEvents reads the events of a CSV the demo data generator wrote
// (cmd/demodata -csv-only): a header naming the columns, an empty field for
// NULL. Columns are found by name, so that a column added or moved does not
// change what is read.
func readEvents(path string) ([]event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the generated events: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the header of %s: %w", path, err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	need := []string{"derived_tstamp", "event", "domain_userid", "domain_sessionid", "domain_sessionidx",
		"page_url", "page_urlpath", "agent_name", "agent_version"}
	for _, name := range need {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("%s has no column %s", path, name)
		}
	}
	optional := func(rec []string, name string) *string {
		v := rec[col[name]]
		if v == "" {
			return nil
		}
		return &v
	}
	var out []event
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		at, err := time.Parse(csvTime, rec[col["derived_tstamp"]])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: derived_tstamp: %w", path, line, err)
		}
		idx, err := strconv.Atoi(rec[col["domain_sessionidx"]])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: domain_sessionidx: %w", path, line, err)
		}
		out = append(out, event{
			at: at.UTC(), kind: rec[col["event"]], user: rec[col["domain_userid"]],
			session: rec[col["domain_sessionid"]], sessionIdx: idx,
			pageURL: optional(rec, "page_url"), pagePath: optional(rec, "page_urlpath"),
			agentName: optional(rec, "agent_name"), agentVersion: optional(rec, "agent_version"),
		})
	}
}

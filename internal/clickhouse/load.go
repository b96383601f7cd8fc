package clickhouse

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// LoadEvents creates project's database and its tables from ddl (the text
// of cube/schema/snowplow_events.clickhouse.sql: the events, and the
// sessions that a materialized view fills as events arrive) and loads the
// demo data generator's CSV of that project into it, as the administrator.
// It returns how many events the table holds.
//
// The CSV is cmd/demodata's: a header naming the table's columns, and an
// empty field for NULL. ClickHouse reads an empty field as an empty string,
// so each is sent as \N. Timestamps are sent as written: ClickHouse before
// 20.1 has DateTime only, which takes no fraction of a second.
func (s *Server) LoadEvents(ctx context.Context, project int64, ddl, csvPath string) (int64, error) {
	db := AppID(project)
	timestamp := "DateTime('UTC')"
	if s.HasDateTime64() {
		timestamp = "DateTime64(3, 'UTC')"
	}
	if _, err := s.Admin(ctx, "CREATE DATABASE "+db); err != nil {
		return 0, fmt.Errorf("creating database %s: %w", db, err)
	}
	create := strings.NewReplacer("{{schema}}", db, "{{timestamp}}", timestamp).Replace(ddl)
	// Before the insert, so that the materialized view sees every event.
	for i, stmt := range Statements(create) {
		if _, err := s.Admin(ctx, stmt); err != nil {
			return 0, fmt.Errorf("creating %s's tables, statement %d: %w", db, i+1, err)
		}
	}

	f, err := os.Open(csvPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return 0, fmt.Errorf("reading the header of %s: %w", csvPath, err)
	}
	// Every column filled, so that none silently gets its default.
	described, err := s.Admin(ctx, "DESCRIBE TABLE "+db+".snowplow_events")
	if err != nil {
		return 0, fmt.Errorf("reading the columns of %s.snowplow_events: %w", db, err)
	}
	var columns []string
	for line := range strings.Lines(described) {
		name, _, _ := strings.Cut(line, "\t")
		columns = append(columns, name)
	}
	if strings.Join(header, ",") != strings.Join(columns, ",") {
		return 0, fmt.Errorf("%s: the header must name the table's columns %v, in order; it names %v", csvPath, columns, header)
	}
	insert := fmt.Sprintf("INSERT INTO %s.snowplow_events (%s) FORMAT CSV", db, strings.Join(header, ", "))

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(nullsAsN(r, pw)) }()
	_, err = s.send(ctx, Admin, s.adminPass, url.Values{"query": {insert}}, pr)
	pr.CloseWithError(errors.New("the insert ended"))
	if err != nil {
		return 0, fmt.Errorf("loading %s into %s: %w", csvPath, db, err)
	}
	n, err := s.Admin(ctx, "SELECT count() FROM "+db+".snowplow_events")
	if err != nil {
		return 0, fmt.Errorf("counting %s's events: %w", db, err)
	}
	return strconv.ParseInt(strings.TrimSpace(n), 10, 64)
}

// nullsAsN copies the records of r to w as CSV, each empty field as \N,
// ClickHouse's NULL.
func nullsAsN(r *csv.Reader, w io.Writer) error {
	cw := csv.NewWriter(w)
	out := []string{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		out = out[:0]
		for _, v := range rec {
			if v == "" {
				v = `\N`
			}
			out = append(out, v)
		}
		if err := cw.Write(out); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Statements splits a DDL file of cube/schema into its statements: each
// ends at a line holding only ";" (the last may go without). ClickHouse's
// HTTP interface takes one statement per request.
func Statements(ddl string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if stmt := strings.TrimSpace(b.String()); stmt != "" {
			out = append(out, stmt)
		}
		b.Reset()
	}
	for line := range strings.Lines(ddl) {
		if strings.TrimSpace(line) == ";" {
			flush()
			continue
		}
		b.WriteString(line)
	}
	flush()
	return out
}

package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testEnd pins the window so every test run sees the same data.
var testEnd = time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)

// testConfig is a project of n events over 30 days ending at testEnd.
func testConfig(id int64, n int, seed uint64) ProjectConfig {
	return ProjectConfig{ID: id, Events: n, Start: testEnd.AddDate(0, 0, -30), End: testEnd, Seed: seed}
}

// generateCSV returns cfg's CSV bytes.
func generateCSV(t testing.TB, cfg ProjectConfig) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	stats, err := WriteCSV(context.Background(), &buf, cfg)
	if err != nil {
		t.Fatalf("WriteCSV: %v", err)
	}
	return buf.Bytes(), stats
}

// row is one parsed CSV row keyed by column name.
type row map[string]string

// parseCSV splits data into its header and rows.
func parseCSV(t testing.TB, data []byte) ([]string, []row) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("reading CSV: %v", err)
	}
	if len(recs) == 0 {
		t.Fatal("CSV has no header")
	}
	hdr := recs[0]
	rows := make([]row, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		r := make(row, len(hdr))
		for i, name := range hdr {
			r[name] = rec[i]
		}
		rows = append(rows, r)
	}
	return hdr, rows
}

// ts parses a timestamp column.
func ts(t testing.TB, r row, col string) time.Time {
	t.Helper()
	v, err := time.Parse(tstampLayout, r[col])
	if err != nil {
		t.Fatalf("%s %q: %v", col, r[col], err)
	}
	return v
}

// ddlColumn is one column of the events table DDL.
type ddlColumn struct {
	name    string
	notNull bool
}

// columnLine matches "    name   TYPE ..." inside CREATE TABLE.
var columnLine = regexp.MustCompile(`^\s+([a-z_][a-z0-9_]*)\s+([A-Z]+)\b(.*)$`)

// ddlColumns reads the table definition the loader uses, so these tests
// fail as soon as the generator and the schema drift apart.
func ddlColumns(t testing.TB) []ddlColumn {
	t.Helper()
	data, err := os.ReadFile("../../cube/schema/snowplow_events.sql")
	if err != nil {
		t.Fatalf("reading DDL: %v", err)
	}
	var cols []ddlColumn
	inTable := false
	for line := range strings.SplitSeq(string(data), "\n") {
		code, _, _ := strings.Cut(line, "--")
		switch {
		case strings.Contains(strings.ToUpper(code), "CREATE TABLE"):
			inTable = true
		case inTable && strings.HasPrefix(strings.TrimSpace(code), ")"):
			inTable = false
		case inTable:
			if m := columnLine.FindStringSubmatch(code); m != nil {
				cols = append(cols, ddlColumn{name: m[1], notNull: strings.Contains(strings.ToUpper(m[3]), "NOT NULL")})
			}
		}
	}
	if len(cols) == 0 {
		t.Fatal("no columns found in DDL")
	}
	return cols
}

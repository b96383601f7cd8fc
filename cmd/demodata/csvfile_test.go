package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHeaderMatchesDDL(t *testing.T) {
	var want []string
	for _, c := range ddlColumns(t) {
		want = append(want, c.name)
	}
	data, _ := generateCSV(t, testConfig(1, 10, 1))
	got, err := csv.NewReader(bytes.NewReader(data)).Read()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("header\n got %v\nwant %v", got, want)
	}
}

func TestRequiredColumnsNeverEmpty(t *testing.T) {
	// Columns the dashboards group by are NULL-able in the DDL but always
	// known for web traffic; an empty one would show up as a blank bucket.
	alwaysSet := []string{"app_id", "platform", "event_name", "dvce_created_tstamp", "page_url", "page_urlhost",
		"page_urlpath", "page_title", "useragent", "agent_name", "agent_version", "os_family", "os_name",
		"br_lang", "doc_lang", "viewport_size"}
	var notNull []string
	for _, c := range ddlColumns(t) {
		if c.notNull {
			notNull = append(notNull, c.name)
		}
	}
	if len(notNull) < 5 {
		t.Fatalf("only %d NOT NULL columns parsed from the DDL: %v", len(notNull), notNull)
	}
	for _, seed := range []uint64{1, 2} {
		data, _ := generateCSV(t, testConfig(1, 10000, seed))
		_, rows := parseCSV(t, data)
		for i, r := range rows {
			for _, col := range append(notNull, alwaysSet...) {
				if r[col] == "" {
					t.Fatalf("seed %d row %d: %s is empty", seed, i, col)
				}
			}
		}
	}
}

func TestNullsAreEmptyUnquoted(t *testing.T) {
	data, _ := generateCSV(t, testConfig(1, 500, 1))
	if regexp.MustCompile(`(?m)(^|,)""(,|$)`).Match(data) {
		t.Error(`CSV contains a quoted empty field; NULL must be an empty unquoted field`)
	}
}

func TestWriteCSVFileCleansUpOnCancel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "project_1.csv")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := writeCSVFile(ctx, path, testConfig(1, 20000, 1))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left files behind: %v", entries)
	}
}

// TestWholeSeconds checks that -whole-seconds writes the same events with
// each timestamp cut to its second, in a form without a fraction.
func TestWholeSeconds(t *testing.T) {
	cfg := testConfig(1, 2000, 3)
	msData, msStats := generateCSV(t, cfg)
	cfg.WholeSeconds = true
	sData, sStats := generateCSV(t, cfg)
	if msStats != sStats {
		t.Errorf("stats %+v with milliseconds, %+v in whole seconds", msStats, sStats)
	}
	hdr, msRows := parseCSV(t, msData)
	_, sRows := parseCSV(t, sData)
	if len(msRows) != len(sRows) || len(msRows) == 0 {
		t.Fatalf("%d rows with milliseconds, %d in whole seconds", len(msRows), len(sRows))
	}
	fractions := 0
	for i := range msRows {
		for _, col := range hdr {
			ms, s := msRows[i][col], sRows[i][col]
			if !strings.HasSuffix(col, "_tstamp") || ms == "" {
				if s != ms {
					t.Fatalf("row %d %s: got %q, want %q as with milliseconds", i, col, s, ms)
				}
				continue
			}
			want, err := time.Parse(tstampLayout, ms)
			if err != nil {
				t.Fatal(err)
			}
			got, err := time.Parse(time.DateTime, s)
			if err != nil {
				t.Fatalf("row %d %s: %q is not a whole-second time: %v", i, col, s, err)
			}
			if want = want.Truncate(time.Second); !got.Equal(want) {
				t.Fatalf("row %d %s: got %s, want %s", i, col, got, want)
			}
			if !strings.HasSuffix(ms, ".000") {
				fractions++
			}
		}
	}
	if fractions == 0 {
		t.Error("no timestamp had a fraction to cut")
	}
}

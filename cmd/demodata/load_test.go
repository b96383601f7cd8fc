package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeLoader records its call and writes (or fails to write) a database.
type fakeLoader struct {
	content string // written to dbPath
	wal     bool   // also leave a WAL beside it
	err     error  // returned after writing
	dbPath  string
	files   []projectFile
}

func (f *fakeLoader) Load(ctx context.Context, dbPath string, files []projectFile) error {
	f.dbPath, f.files = dbPath, files
	if f.content != "" {
		if err := os.WriteFile(dbPath, []byte(f.content), 0o644); err != nil {
			return err
		}
	}
	if f.wal {
		if err := os.WriteFile(dbPath+".wal", []byte("wal"), 0o644); err != nil {
			return err
		}
	}
	return f.err
}

func TestLoadAtomically(t *testing.T) {
	tests := []struct {
		name       string
		loader     fakeLoader
		cancel     bool
		wantErr    bool
		wantTarget string
		wantWAL    bool
	}{
		{name: "success replaces", loader: fakeLoader{content: "new"}, wantTarget: "new"},
		{name: "success with wal", loader: fakeLoader{content: "new", wal: true}, wantTarget: "new", wantWAL: true},
		{name: "failure keeps old", loader: fakeLoader{content: "half", wal: true, err: errors.New("boom")}, wantErr: true, wantTarget: "old", wantWAL: true},
		{name: "no output", loader: fakeLoader{}, wantErr: true, wantTarget: "old", wantWAL: true},
		{name: "interrupted", loader: fakeLoader{content: "half"}, cancel: true, wantErr: true, wantTarget: "old", wantWAL: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "analytics.duckdb")
			os.WriteFile(target, []byte("old"), 0o644)
			os.WriteFile(target+".wal", []byte("old wal"), 0o644)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			files := []projectFile{{1, "a.csv"}, {2, "b.csv"}}
			err := loadAtomically(ctx, &tt.loader, target, files)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if want := fmt.Sprintf("%s.tmp-%d", target, os.Getpid()); tt.loader.dbPath != want {
				t.Errorf("loader got %q, want %q", tt.loader.dbPath, want)
			}
			if !slices.Equal(tt.loader.files, files) {
				t.Errorf("loader got files %v", tt.loader.files)
			}
			if got, _ := os.ReadFile(target); string(got) != tt.wantTarget {
				t.Errorf("target holds %q, want %q", got, tt.wantTarget)
			}
			if _, err := os.Stat(target + ".wal"); (err == nil) != tt.wantWAL {
				t.Errorf("target WAL present = %v, want %v", err == nil, tt.wantWAL)
			}
			if wal, err := os.ReadFile(target + ".wal"); err == nil && !tt.wantErr && string(wal) == "old wal" {
				t.Error("stale WAL of the old database kept")
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sub", "analytics.duckdb")
	loader := &fakeLoader{content: "db"}
	var out, errOut bytes.Buffer
	args := []string{"-projects", "5:300,6:200", "-end", "2025-01-31T00:00:00Z", "-db", db}
	if code := run(context.Background(), args, &out, &errOut, loader); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got, _ := os.ReadFile(db); string(got) != "db" {
		t.Errorf("database holds %q", got)
	}
	if len(loader.files) != 2 || loader.files[0].id != 5 || loader.files[1].id != 6 {
		t.Fatalf("loader files %v", loader.files)
	}
	for _, f := range loader.files {
		if !filepath.IsAbs(f.path) {
			t.Errorf("CSV path %q not absolute", f.path)
		}
		if _, err := os.Stat(f.path); err == nil {
			t.Errorf("temporary CSV %s not removed", f.path)
		}
	}
	for _, want := range []string{"shop.example.com", "300", "200", "loaded into"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunCSVOnly(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	args := []string{"-projects", "1:100,2:50", "-end", "2025-01-31T00:00:00Z", "-csv-only", dir, "-cube-dir", filepath.Join(dir, "missing")}
	if code := run(context.Background(), args, &out, &errOut, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, name := range []string{"project_1.csv", "project_2.csv"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, rows := parseCSV(t, data); len(rows) == 0 {
			t.Errorf("%s has no rows", name)
		}
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"bad flag", []string{"-projects", "nope"}, 2},
		{"missing loader script", []string{"-cube-dir", filepath.Join(dir, "nowhere"), "-db", filepath.Join(dir, "x.duckdb")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errOut, nil); code != tt.want {
				t.Errorf("exit %d, want %d (%s)", code, tt.want, errOut.String())
			}
		})
	}
}

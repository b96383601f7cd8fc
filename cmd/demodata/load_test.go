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

	"productanalytics/internal/eventsdb"
)

// fakeLoader records its calls and writes (or fails to write) a database
// per project.
type fakeLoader struct {
	content string // written to dbPath, followed by the project id
	wal     bool   // also leave a WAL beside it
	failOn  int64  // the project whose load fails after writing
	skip    int64  // the project for which nothing is written
	cancel  func() // called after the first load
	dbPaths []string
	files   []projectFile
}

func (f *fakeLoader) Load(ctx context.Context, jobs []loadJob) error {
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.load(j.dbPath, j.file); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeLoader) load(dbPath string, file projectFile) error {
	f.dbPaths, f.files = append(f.dbPaths, dbPath), append(f.files, file)
	if f.cancel != nil {
		f.cancel()
	}
	if file.id != f.skip {
		if err := os.WriteFile(dbPath, []byte(fmt.Sprintf("%s%d", f.content, file.id)), 0o644); err != nil {
			return err
		}
		if f.wal {
			if err := os.WriteFile(dbPath+".wal", []byte("wal"), 0o644); err != nil {
				return err
			}
		}
	}
	if file.id == f.failOn || f.cancel != nil {
		// A loader stopped half way leaves a large project's staging
		// copy and its sort's spill beside the file.
		os.WriteFile(dbPath+".staging", []byte("staging"), 0o644)
		os.MkdirAll(filepath.Join(dbPath+".tmp", "spill"), 0o755)
	}
	if file.id == f.failOn {
		return errors.New("boom")
	}
	return nil
}

func TestLoadAtomically(t *testing.T) {
	tests := []struct {
		name    string
		loader  fakeLoader
		cancel  bool
		fresh   bool // no old files in the folder
		wantErr bool
		want    string // the files' contents before the project id
		wantWAL bool
	}{
		{name: "success replaces", loader: fakeLoader{content: "new"}, want: "new"},
		{name: "first run", loader: fakeLoader{content: "new"}, fresh: true, want: "new"},
		{name: "success with wal", loader: fakeLoader{content: "new", wal: true}, want: "new", wantWAL: true},
		{name: "a failure keeps every old file", loader: fakeLoader{content: "half", wal: true, failOn: 2}, wantErr: true, want: "old", wantWAL: true},
		{name: "no output", loader: fakeLoader{content: "new", skip: 2}, wantErr: true, want: "old", wantWAL: true},
		{name: "interrupted", loader: fakeLoader{content: "half"}, cancel: true, wantErr: true, want: "old", wantWAL: true},
		{name: "interrupted on a first run", loader: fakeLoader{content: "half"}, cancel: true, fresh: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := []projectFile{{1, "a.csv"}, {2, "b.csv"}}
			if !tt.fresh {
				for _, f := range files {
					os.WriteFile(eventsdb.Path(dir, f.id), []byte(fmt.Sprintf("old%d", f.id)), 0o644)
					os.WriteFile(eventsdb.Path(dir, f.id)+".wal", []byte("old wal"), 0o644)
				}
			}
			os.WriteFile(filepath.Join(dir, "other.txt"), []byte("mine"), 0o644)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				tt.loader.cancel = cancel
			}
			err := loadAtomically(ctx, &tt.loader, dir, files)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			for i, f := range tt.loader.files {
				if want := fmt.Sprintf("%s.tmp-%d", eventsdb.Path(dir, f.id), os.Getpid()); tt.loader.dbPaths[i] != want {
					t.Errorf("loader got %q, want %q", tt.loader.dbPaths[i], want)
				}
			}
			if !tt.wantErr && !slices.Equal(tt.loader.files, files) {
				t.Errorf("loader got files %v", tt.loader.files)
			}
			for _, f := range files {
				target := eventsdb.Path(dir, f.id)
				got, err := os.ReadFile(target)
				switch {
				case tt.want == "" && err == nil:
					t.Errorf("project %d: a file appeared: %q", f.id, got)
				case tt.want != "" && string(got) != fmt.Sprintf("%s%d", tt.want, f.id):
					t.Errorf("project %d: the file holds %q, want %s%d", f.id, got, tt.want, f.id)
				}
				wal, err := os.ReadFile(target + ".wal")
				if (err == nil) != tt.wantWAL {
					t.Errorf("project %d: WAL present = %v, want %v", f.id, err == nil, tt.wantWAL)
				}
				if err == nil && !tt.wantErr && string(wal) == "old wal" {
					t.Errorf("project %d: stale WAL of the old database kept", f.id)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "other.txt")); string(got) != "mine" {
				t.Error("another file in the folder was touched")
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
	dir := filepath.Join(t.TempDir(), "sub", "events")
	loader := &fakeLoader{content: "db"}
	var out, errOut bytes.Buffer
	args := []string{"-projects", "5:300,6:200", "-end", "2025-01-31T00:00:00Z", "-data", dir}
	if code := run(context.Background(), args, &out, &errOut, loader); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, id := range []int64{5, 6} {
		if got, _ := os.ReadFile(eventsdb.Path(dir, id)); string(got) != fmt.Sprintf("db%d", id) {
			t.Errorf("project %d's database holds %q", id, got)
		}
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
		{"missing loader script", []string{"-cube-dir", filepath.Join(dir, "nowhere"), "-data", filepath.Join(dir, "events")}, 1},
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

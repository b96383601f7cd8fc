//go:build unix

package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, l *File, s string) {
	t.Helper()
	if n, err := l.Write([]byte(s)); n != len(s) || err != nil {
		t.Fatalf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
	}
}

func TestOpenRotatesThePreviousRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cube.log")
	os.WriteFile(path, []byte("last run\n"), 0o644)
	os.WriteFile(path+".1", []byte("the run before\n"), 0o644)
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	write(t, l, "this run\n")
	for _, c := range []struct{ file, want string }{{path, "this run\n"}, {path + ".1", "last run\n"}} {
		if got := read(t, c.file); got != c.want {
			t.Errorf("%s holds %q; want %q", filepath.Base(c.file), got, c.want)
		}
	}
}

func TestASecondRunLeavesTheRunningOnesLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cube.log")
	first, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	write(t, first, "first\n")
	second, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	write(t, second, "second\n")
	if got, want := second.Path(), filepath.Join(dir, "cube-2.log"); got != want {
		t.Errorf("the second run writes %s; want %s", got, want)
	}
	write(t, first, "first again\n")
	if got := read(t, path); got != "first\nfirst again\n" {
		t.Errorf("the running log holds %q after a second run started; want both of its lines", got)
	}
	if got := read(t, path+".1"); got != "" {
		t.Errorf("the running log was rotated: %s.1 holds %q", filepath.Base(path), got)
	}
	second.Close()
	first.Close()
	// Both ended: the next run takes the first name again, and rotates it.
	third, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if third.Path() != path || read(t, path+".1") != "first\nfirst again\n" {
		t.Errorf("a run after both took %s, with %s.1 holding %q", third.Path(), filepath.Base(path), read(t, path+".1"))
	}
	if _, err := first.Write([]byte("late\n")); err == nil {
		t.Error("a closed log accepted a write")
	}
}

func TestSizeBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cube.log")
	const bound = 100
	l, err := Open(path, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var last []string
	for i := range 50 {
		line := strings.Repeat(string(rune('a'+i%26)), 29) + "\n"
		write(t, l, line)
		last = append(last, line)
		cur, prev := read(t, path), read(t, path+".1")
		if len(cur) > bound || len(prev) > bound {
			t.Fatalf("after %d lines: %d and %d bytes; want at most %d each", i+1, len(cur), len(prev), bound)
		}
		// Nothing recent is lost: the newest lines are in the two files, in order.
		if !strings.HasSuffix(prev+cur, last[len(last)-1]) || !strings.Contains(prev+cur, strings.Join(last[max(0, len(last)-3):], "")) {
			t.Fatalf("after %d lines the files end %q; want the last lines in order", i+1, prev+cur)
		}
	}
	// A write larger than the bound goes whole into a file of its own.
	big := strings.Repeat("z", 3*bound)
	write(t, l, big)
	if got := read(t, path); got != big {
		t.Errorf("a write over the bound left %d bytes in the file; want it whole (%d)", len(got), len(big))
	}
}

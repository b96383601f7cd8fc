package stack

import (
	"fmt"
	"strings"
	"testing"
)

func TestNewCubes(t *testing.T) {
	tests := []struct {
		n, port   int
		want      string
		wantPorts []int
	}{
		{1, 4000, "default", []int{4000}},
		{3, 4000, "cube-1 cube-2 cube-3", []int{4000, 4001, 4002}},
		{2, 0, "cube-1 cube-2", []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d from %d", tt.n, tt.port), func(t *testing.T) {
			cubes := newCubes(tt.n, tt.port)
			var names []string
			keys, secrets := map[string]bool{}, map[string]bool{}
			for i, c := range cubes {
				names = append(names, c.name)
				if c.port != tt.wantPorts[i] {
					t.Errorf("%s on port %d, want %d", c.name, c.port, tt.wantPorts[i])
				}
				if keys[c.key] || secrets[c.secret] {
					t.Errorf("%s shares its key or its secret with another Cube", c.name)
				}
				keys[c.key], secrets[c.secret] = true, true
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Errorf("names %q, want %q", got, tt.want)
			}
			// The first Cube keeps the single Cube's key and secret, which
			// the tests of one Cube know.
			if cubes[0].key != LocalCubeKey || cubes[0].secret != CubeKeySecret {
				t.Errorf("the first Cube has key %q, secret %q", cubes[0].key, cubes[0].secret)
			}
		})
	}
}

func TestLineWriterPassesWholeLines(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"whole lines", []string{"a\n", "b\n"}, "a\nb\n"},
		{"a line in parts", []string{"a", "b", "c\nd"}, "abc\n"},
		{"two lines in one write", []string{"a\nb\nc"}, "a\nb\n"},
		{"a line past 64 KiB goes out in parts", []string{strings.Repeat("x", 64<<10)}, strings.Repeat("x", 64<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			w := &lineWriter{w: &out}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if out.String() != tt.want {
				t.Fatalf("passed on %q, want %q", out.String(), tt.want)
			}
		})
	}
}

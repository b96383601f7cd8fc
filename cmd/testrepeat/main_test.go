package main

import (
	"strings"
	"testing"
)

func TestHasFailedChild(t *testing.T) {
	failed := []string{"p/a TestX/sub", "p/b TestY"}
	tests := []struct {
		pkg, name string
		want      bool
	}{
		{"p/a", "TestX", true},
		{"p/a", "TestXY", false},
		{"p/a", "(package)", true},
		{"p/b", "TestY", false},
		{"p/c", "(package)", false},
	}
	for _, tt := range tests {
		t.Run(tt.pkg+" "+tt.name, func(t *testing.T) {
			if got := hasFailedChild(failed, tt.pkg, tt.name); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReport(t *testing.T) {
	var b strings.Builder
	code := report(&b, []run{{}, {failed: []string{"p TestA"}, exitCode: 1}, {failed: []string{"p TestA"}, exitCode: 1}})
	if code != 1 || !strings.Contains(b.String(), "1 of 3 runs passed") || !strings.Contains(b.String(), "p TestA failed in runs [2 3]") {
		t.Fatalf("code %d, report:\n%s", code, b.String())
	}
	b.Reset()
	if code := report(&b, []run{{}, {}}); code != 0 || !strings.Contains(b.String(), "2 of 2 runs passed") {
		t.Fatalf("code %d, report:\n%s", code, b.String())
	}
}

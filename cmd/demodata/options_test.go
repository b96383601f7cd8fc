package main

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"
)

func TestParseProjects(t *testing.T) {
	tests := []struct {
		in      string
		want    []projectSpec
		wantErr bool
	}{
		{in: "1:100000,2:10000", want: []projectSpec{{1, 100000}, {2, 10000}}},
		{in: " 7:5 ", want: []projectSpec{{7, 5}}},
		{in: "3:10,,4:20,", want: []projectSpec{{3, 10}, {4, 20}}},
		{in: "", wantErr: true},
		{in: "1", wantErr: true},
		{in: "x:10", wantErr: true},
		{in: "0:10", wantErr: true},
		{in: "1:0", wantErr: true},
		{in: "1:-5", wantErr: true},
		{in: "1:10,1:20", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseProjects(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600))
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, o options)
		wantErr bool
	}{
		{name: "defaults", args: nil, check: func(t *testing.T, o options) {
			if !o.end.Equal(now.Truncate(time.Second)) || o.end.Location() != time.UTC {
				t.Errorf("end = %v, want now in UTC", o.end)
			}
			if o.days != 30 || o.seed != 1 || o.data != ".local/events" || o.cubeDir != "cube" || o.csvOnly != "" {
				t.Errorf("unexpected defaults: %+v", o)
			}
			if len(o.projects) != 2 {
				t.Errorf("projects = %v", o.projects)
			}
			if got := o.end.Sub(o.start()); got != 30*24*time.Hour {
				t.Errorf("window = %v", got)
			}
		}},
		{name: "explicit end", args: []string{"-end", "2025-01-31T02:00:00+02:00", "-days", "7", "-seed", "9"}, check: func(t *testing.T, o options) {
			if want := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC); !o.end.Equal(want) || o.days != 7 || o.seed != 9 {
				t.Errorf("got end %v days %d seed %d", o.end, o.days, o.seed)
			}
		}},
		{name: "bad end", args: []string{"-end", "yesterday"}, wantErr: true},
		{name: "bad days", args: []string{"-days", "0"}, wantErr: true},
		{name: "bad projects", args: []string{"-projects", "a"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, now, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestShiftMajor(t *testing.T) {
	tests := []struct {
		v    string
		n    int
		want string
	}{
		{"131.0.0.0", 0, "131.0.0.0"},
		{"131.0.0.0", 25, "156.0.0.0"},
		{"133.0", -3, "130.0"},
		{"18.1", -40, "18.1"}, // never below 1
		{"odd", 3, "odd"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%+d", tt.v, tt.n), func(t *testing.T) {
			if got := shiftMajor(tt.v, tt.n); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

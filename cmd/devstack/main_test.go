package main

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"

	"productanalytics/internal/stack"
	"productanalytics/shared/access"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want map[string]string
	}{
		{"nothing set", map[string]string{"HOME": "/root"}, map[string]string{}},
		{"gitlab mode", map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": "http://127.0.0.1:8080", "PATH": "/bin"},
			map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": "http://127.0.0.1:8080"}},
		{"the stack's own are kept", map[string]string{"CUBE_API_URL": "http://elsewhere", "AUTH_JWT_SECRET_ID": "x", "LOG_LEVEL": "debug"},
			map[string]string{"LOG_LEVEL": "debug"}},
		{"the stack's Cubes are kept, placements on them taken", map[string]string{"CUBE_DEPLOYMENTS": "a=http://elsewhere=k", "CUBE_PLACEMENTS": "1=cube-2"},
			map[string]string{"CUBE_PLACEMENTS": "1=cube-2"}},
		{"a JWKS replaces the stack's key", map[string]string{"AUTH_JWKS_URL": "https://issuer/keys"},
			map[string]string{"AUTH_JWKS_URL": "https://issuer/keys", "AUTH_JWT_SECRET_ID": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := configFromEnv(func(k string) string { return tt.set[k] })
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenCommand(t *testing.T) {
	var out strings.Builder
	if err := token([]string{"-project", "7", "-ttl", "2h"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	h := http.Header{"Authorization": {"Bearer " + lines[len(lines)-1]}}
	checker := access.NewJWT(access.JWTOptions{Key: func(context.Context) (string, error) { return stack.LocalCallerKey, nil }})
	if err := checker.CheckProject(context.Background(), h, 7); err != nil {
		t.Fatalf("the last line is not a token for project 7: %v", err)
	}
	if err := checker.CheckProject(context.Background(), h, 8); !errors.Is(err, access.ErrProjectNotFound) {
		t.Fatalf("the token reads project 8: %v", err)
	}
	for _, bad := range [][]string{{}, {"-project", "0"}, {"-project", "x"}, {"-project", "1", "-ttl", "soon"}} {
		if err := token(bad, &out); err == nil {
			t.Errorf("token %v accepted", bad)
		}
	}
}

func TestCubesEnv(t *testing.T) {
	tests := []struct {
		value string
		want  int
		ok    bool
	}{
		{"", 1, true},
		{"1", 1, true},
		{"3", 3, true},
		{"8", 8, true},
		{"0", 0, false},
		{"9", 0, false},
		{"-1", 0, false},
		{"three", 0, false},
	}
	for _, tt := range tests {
		t.Run("CUBES="+tt.value, func(t *testing.T) {
			got, err := cubesEnv(tt.value)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("got %d, %v; want %d, accepted %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestListenEnv(t *testing.T) {
	tests := []struct {
		value, want string
		ok          bool
	}{
		{"", "127.0.0.1", true},
		{"0.0.0.0", "0.0.0.0", true},
		{"172.17.0.1", "172.17.0.1", true},
		{"::", "::", true},
		{"localhost", "", false},
		{"0.0.0.0:3000", "", false},
	}
	for _, tt := range tests {
		got, err := listenEnv(tt.value)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("LISTEN=%q: got %q, %v; want %q, accepted %v", tt.value, got, err, tt.want, tt.ok)
		}
	}
}

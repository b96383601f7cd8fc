package config

import (
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"productanalytics/shared/deploy"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func base() map[string]string {
	return map[string]string{
		"CUBE_API_URL":           "https://cube.example.com/",
		"CUBE_API_KEY_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cube-key",
		"AUTH_JWT_SECRET_ID":     "caller-key",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(base()))
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthMode != AuthJWT || c.JWTProjectsClaim != "projects" ||
		c.CubeWaitDeadline != 25*time.Second || c.CubeRequestTimeout != 20*time.Second ||
		c.SecretCacheTTL != 5*time.Minute || c.SecretStaleFor != 15*time.Minute || c.LogLevel != slog.LevelInfo ||
		c.CubeTokenIssuer != "product-analytics-api" || c.MetricsNamespace != "ProductAnalytics" ||
		c.MaxInFlightPerProject != DefaultMaxInFlightPerProject {
		t.Fatalf("defaults: %+v", c)
	}
	want := []deploy.Deployment{{Name: "default", URL: "https://cube.example.com", KeySecretID: base()["CUBE_API_KEY_SECRET_ID"]}}
	if !slices.Equal(c.Deployments, want) || len(c.Placements) != 0 {
		t.Fatalf("CUBE_API_URL and CUBE_API_KEY_SECRET_ID make %+v %v, want one deployment %+v", c.Deployments, c.Placements, want)
	}
}

func TestLoadDeployments(t *testing.T) {
	two := "cube-1=http://127.0.0.1:4000=cube-key-1, cube-2=http://127.0.0.1:4001/=cube-key-2"
	tests := []struct {
		name       string
		change     map[string]string
		want       []deploy.Deployment
		placements map[int64]string
	}{
		{"a list instead of the single Cube", map[string]string{"CUBE_API_URL": "", "CUBE_API_KEY_SECRET_ID": "", "CUBE_DEPLOYMENTS": two},
			[]deploy.Deployment{{Name: "cube-1", URL: "http://127.0.0.1:4000", KeySecretID: "cube-key-1"}, {Name: "cube-2", URL: "http://127.0.0.1:4001", KeySecretID: "cube-key-2"}}, map[int64]string{}},
		{"with placements", map[string]string{"CUBE_API_URL": "", "CUBE_API_KEY_SECRET_ID": "", "CUBE_DEPLOYMENTS": two, "CUBE_PLACEMENTS": "42=cube-2,7=cube-1"},
			[]deploy.Deployment{{Name: "cube-1", URL: "http://127.0.0.1:4000", KeySecretID: "cube-key-1"}, {Name: "cube-2", URL: "http://127.0.0.1:4001", KeySecretID: "cube-key-2"}}, map[int64]string{42: "cube-2", 7: "cube-1"}},
		{"placements on the single Cube", map[string]string{"CUBE_PLACEMENTS": "42=default"},
			[]deploy.Deployment{{Name: "default", URL: "https://cube.example.com", KeySecretID: base()["CUBE_API_KEY_SECRET_ID"]}}, map[int64]string{42: "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			maps.Copy(m, tt.change)
			c, err := Load(env(m))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Deployments, tt.want) || !maps.Equal(c.Placements, tt.placements) {
				t.Fatalf("got %+v %v, want %+v %v", c.Deployments, c.Placements, tt.want, tt.placements)
			}
			r, err := c.Router()
			if err != nil {
				t.Fatal(err)
			}
			for p, name := range tt.placements {
				if got := r.For(p).Name; got != name {
					t.Errorf("project %d went to %s, placed on %s", p, got, name)
				}
			}
			if o := c.CubeOptionsFor(c.Deployments[len(c.Deployments)-1]); o.BaseURL != tt.want[len(tt.want)-1].URL || o.Issuer != c.CubeTokenIssuer {
				t.Errorf("CubeOptionsFor: %+v", o)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		change map[string]string
		want   []string
	}{
		{"nothing set", map[string]string{"CUBE_API_URL": "", "CUBE_API_KEY_SECRET_ID": "", "AUTH_JWT_SECRET_ID": ""},
			[]string{"CUBE_API_URL: is required", "CUBE_API_KEY_SECRET_ID: is required", "AUTH_JWT_SECRET_ID: is required"}},
		{"bad URL", map[string]string{"CUBE_API_URL": "cube:4000"}, []string{"CUBE_API_URL"}},
		{"a key without a URL", map[string]string{"CUBE_API_URL": ""}, []string{"CUBE_API_URL: is required"}},
		{"a list and the single Cube", map[string]string{"CUBE_DEPLOYMENTS": "a=http://h:1=k"},
			[]string{"CUBE_DEPLOYMENTS: and CUBE_API_URL/CUBE_API_KEY_SECRET_ID are exclusive"}},
		{"a list and a single key", map[string]string{"CUBE_API_URL": "", "CUBE_DEPLOYMENTS": "a=http://h:1=k"},
			[]string{"CUBE_DEPLOYMENTS: and CUBE_API_URL/CUBE_API_KEY_SECRET_ID are exclusive"}},
		{"a bad list", map[string]string{"CUBE_API_URL": "", "CUBE_API_KEY_SECRET_ID": "", "CUBE_DEPLOYMENTS": "a=h:1=k,a b=http://h:2=k"},
			[]string{`CUBE_DEPLOYMENTS: entry 1: deployment a: "h:1" is not an http(s) base URL`, "entry 2: deployment name \"a b\""}},
		{"a bad placement", map[string]string{"CUBE_PLACEMENTS": "forty-two=default"}, []string{`CUBE_PLACEMENTS: placement "forty-two=default"`}},
		{"a placement on an unlisted deployment", map[string]string{"CUBE_PLACEMENTS": "42=large-1"},
			[]string{"CUBE_PLACEMENTS: routing projects: project 42 is placed on large-1, which is not a listed deployment"}},
		{"bad duration", map[string]string{"CUBE_WAIT_DEADLINE": "soon"}, []string{"CUBE_WAIT_DEADLINE"}},
		{"duration out of range", map[string]string{"CUBE_REQUEST_TIMEOUT": "5m"}, []string{"CUBE_REQUEST_TIMEOUT"}},
		{"timeout above deadline", map[string]string{"CUBE_REQUEST_TIMEOUT": "20s", "CUBE_WAIT_DEADLINE": "5s"}, []string{"must not exceed CUBE_WAIT_DEADLINE"}},
		{"unknown mode", map[string]string{"AUTH_MODE": "magic"}, []string{"AUTH_MODE"}},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}},
		{"in-flight limit zero", map[string]string{"MAX_IN_FLIGHT_PER_PROJECT": "0"}, []string{"MAX_IN_FLIGHT_PER_PROJECT: 0 is outside 1 to 10000"}},
		{"in-flight limit not a number", map[string]string{"MAX_IN_FLIGHT_PER_PROJECT": "six"}, []string{"MAX_IN_FLIGHT_PER_PROJECT"}},
		{"in-flight limit negative", map[string]string{"MAX_IN_FLIGHT_PER_PROJECT": "-1"}, []string{"MAX_IN_FLIGHT_PER_PROJECT"}},
		{"AWS's own namespace", map[string]string{"METRICS_NAMESPACE": "AWS/Lambda"}, []string{"METRICS_NAMESPACE"}},
		{"a namespace with a space", map[string]string{"METRICS_NAMESPACE": "Product Analytics"}, []string{"METRICS_NAMESPACE"}},
		{"gitlab without URL", map[string]string{"AUTH_MODE": "gitlab"}, []string{"GITLAB_URL: is required when AUTH_MODE is gitlab"}},
		{"gitlab bad URL", map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": "gitlab.com"}, []string{"GITLAB_URL"}},
		{"gitlab bad timeout", map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": "https://gitlab.com", "GITLAB_TIMEOUT": "1m"}, []string{"GITLAB_TIMEOUT"}},
		{"gitlab bad TTLs", map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": "https://gitlab.com", "GITLAB_ALLOW_TTL": "forever", "GITLAB_DENY_TTL": "0s"},
			[]string{"GITLAB_ALLOW_TTL", "GITLAB_DENY_TTL"}},
		{"gitlab bad cache size", map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": "https://gitlab.com", "GITLAB_CACHE_SIZE": "lots"}, []string{"GITLAB_CACHE_SIZE"}},
		{"gitlab cache size zero", map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": "https://gitlab.com", "GITLAB_CACHE_SIZE": "0"}, []string{"GITLAB_CACHE_SIZE"}},
		{"a gitlab setting is checked in jwt mode too", map[string]string{"GITLAB_TIMEOUT": "soon"}, []string{"GITLAB_TIMEOUT"}},
		{"jwks without iss and aud", map[string]string{"AUTH_JWT_SECRET_ID": "", "AUTH_JWKS_URL": "https://gitlab.example.com/oauth/discovery/keys"},
			[]string{"AUTH_JWT_ISSUER: is required with AUTH_JWKS_URL", "AUTH_JWT_AUDIENCE: is required with AUTH_JWKS_URL"}},
		{"jwks and a secret", map[string]string{"AUTH_JWKS_URL": "https://gitlab.example.com/oauth/discovery/keys", "AUTH_JWT_ISSUER": "https://gitlab.example.com", "AUTH_JWT_AUDIENCE": "pa"},
			[]string{"AUTH_JWKS_URL: and AUTH_JWT_SECRET_ID are exclusive"}},
		{"jwks bad URL", map[string]string{"AUTH_JWT_SECRET_ID": "", "AUTH_JWKS_URL": "keys.json", "AUTH_JWT_ISSUER": "i", "AUTH_JWT_AUDIENCE": "a"}, []string{"AUTH_JWKS_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			for k, v := range tt.change {
				m[k] = v
			}
			_, err := Load(env(m))
			if err == nil {
				t.Fatal("Load accepted a bad configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadAuthModes(t *testing.T) {
	t.Run("gitlab", func(t *testing.T) {
		m := base()
		delete(m, "AUTH_JWT_SECRET_ID") // not needed in gitlab mode
		m["AUTH_MODE"] = "gitlab"
		m["GITLAB_URL"] = "https://gitlab.com/"
		c, err := Load(env(m))
		if err != nil {
			t.Fatal(err)
		}
		if c.AuthMode != AuthGitLab || c.GitLabURL != "https://gitlab.com" || c.GitLabTimeout != 3*time.Second ||
			c.GitLabAllowTTL != time.Minute || c.GitLabDenyTTL != 10*time.Second || c.GitLabCacheSize != 10000 {
			t.Fatalf("gitlab defaults: %+v", c)
		}
		m["GITLAB_TIMEOUT"], m["GITLAB_ALLOW_TTL"], m["GITLAB_DENY_TTL"], m["GITLAB_CACHE_SIZE"] = "1500ms", "2m", "5s", "500"
		c, err = Load(env(m))
		if err != nil {
			t.Fatal(err)
		}
		if c.GitLabTimeout != 1500*time.Millisecond || c.GitLabAllowTTL != 2*time.Minute || c.GitLabDenyTTL != 5*time.Second || c.GitLabCacheSize != 500 {
			t.Fatalf("gitlab settings: %+v", c)
		}
	})
	t.Run("jwks for GitLab CI ID tokens", func(t *testing.T) {
		m := base()
		delete(m, "AUTH_JWT_SECRET_ID")
		m["AUTH_JWKS_URL"] = "https://gitlab.example.com/oauth/discovery/keys"
		m["AUTH_JWT_ISSUER"] = "https://gitlab.example.com"
		m["AUTH_JWT_AUDIENCE"] = "https://analytics.example.com"
		m["AUTH_JWT_PROJECTS_CLAIM"] = "project_id"
		c, err := Load(env(m))
		if err != nil {
			t.Fatal(err)
		}
		if c.AuthMode != AuthJWT || c.JWKSURL != m["AUTH_JWKS_URL"] || c.JWTSecretID != "" || c.JWTProjectsClaim != "project_id" {
			t.Fatalf("jwks: %+v", c)
		}
	})
}

// TestVariablesAreRead keeps Variables, which the README and template tests
// rely on, in step with what Load reads.
func TestVariablesAreRead(t *testing.T) {
	read := map[string]bool{}
	Load(func(k string) string { read[k] = true; return base()[k] })
	for _, v := range Variables() {
		if !read[v] {
			t.Errorf("Variables lists %s, which Load does not read", v)
		}
		delete(read, v)
	}
	for v := range read {
		t.Errorf("Load reads %s, which Variables does not list", v)
	}
}

func TestLoadCube(t *testing.T) {
	m := base()
	delete(m, "AUTH_JWT_SECRET_ID")
	m["AUTH_MODE"] = "ignored-here"
	if _, err := LoadCube(env(m)); err != nil {
		t.Fatalf("LoadCube needs only the Cube variables: %v", err)
	}
	if _, err := Load(env(m)); err == nil {
		t.Fatal("Load accepted a configuration without caller access")
	}
	read := map[string]bool{}
	LoadCube(func(k string) string { read[k] = true; return "" })
	if len(read) != len(CubeVariables()) {
		t.Fatalf("LoadCube read %d variables; CubeVariables lists %d", len(read), len(CubeVariables()))
	}
	for _, v := range CubeVariables() {
		if !read[v] {
			t.Errorf("CubeVariables lists %s, which LoadCube does not read", v)
		}
	}
}

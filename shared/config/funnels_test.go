package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadFunnels(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want Funnels
		err  string
	}{
		{"none", nil, Funnels{S3Prefix: "funnels/", TTL: 30 * time.Second, Timeout: 5 * time.Second}, ""},
		{"dir", map[string]string{"FUNNELS_SOURCE": "dir", "FUNNELS_DIR": "/defs", "FUNNELS_TTL": "10s"},
			Funnels{Source: "dir", Dir: "/defs", S3Prefix: "funnels/", TTL: 10 * time.Second, Timeout: 5 * time.Second}, ""},
		{"s3", map[string]string{"FUNNELS_SOURCE": "s3", "FUNNELS_S3_BUCKET": "b", "FUNNELS_S3_PREFIX": "defs"},
			Funnels{Source: "s3", S3Bucket: "b", S3Prefix: "defs/", TTL: 30 * time.Second, Timeout: 5 * time.Second}, ""},
		{"gitlab", map[string]string{"FUNNELS_SOURCE": "gitlab", "GITLAB_URL": "https://gitlab.example.com", "FUNNELS_GITLAB_TOKEN_SECRET_ID": "t"},
			Funnels{Source: "gitlab", GitLabURL: "https://gitlab.example.com", GitLabTokenSecretID: "t", S3Prefix: "funnels/", TTL: 30 * time.Second, Timeout: 5 * time.Second}, ""},
		{"dir without a folder", map[string]string{"FUNNELS_SOURCE": "dir"}, Funnels{}, "FUNNELS_DIR is required"},
		{"s3 without a bucket", map[string]string{"FUNNELS_SOURCE": "s3"}, Funnels{}, "FUNNELS_S3_BUCKET is required"},
		{"gitlab without a token", map[string]string{"FUNNELS_SOURCE": "gitlab", "GITLAB_URL": "https://g"}, Funnels{}, "FUNNELS_GITLAB_TOKEN_SECRET_ID is required"},
		{"unknown source", map[string]string{"FUNNELS_SOURCE": "ftp"}, Funnels{}, "must be dir, s3 or gitlab"},
		{"bad TTL", map[string]string{"FUNNELS_TTL": "0s"}, Funnels{}, "FUNNELS_TTL must be a duration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := LoadFunnels(func(k string) string { return c.env[k] })
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

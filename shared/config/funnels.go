package config

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"productanalytics/shared/funnels"
	"productanalytics/shared/secrets"
)

// Where the API reads projects' funnel definitions (FUNNELS_SOURCE).
const (
	// FunnelsNone: no funnels; funnel members are left to Cube.
	FunnelsNone = ""
	// FunnelsDir: FUNNELS_DIR/<project id>/*.yml.
	FunnelsDir = "dir"
	// FunnelsS3: s3://FUNNELS_S3_BUCKET/FUNNELS_S3_PREFIX<project id>/*.yml.
	FunnelsS3 = "s3"
	// FunnelsGitLab: each project's repository at its default branch,
	// .gitlab/analytics/funnels/, through GITLAB_URL's API.
	FunnelsGitLab = "gitlab"
)

// Funnels is where the API reads projects' funnel definitions, and how long
// it keeps them. Cube reads the same place itself (cube/funnels.js).
type Funnels struct {
	// Source is FUNNELS_SOURCE: "", dir, s3 or gitlab.
	Source string
	// Dir is FUNNELS_DIR, with Source dir.
	Dir string
	// S3Bucket and S3Prefix are FUNNELS_S3_BUCKET and FUNNELS_S3_PREFIX
	// (default "funnels/"), with Source s3.
	S3Bucket, S3Prefix string
	// GitLabURL is GITLAB_URL, with Source gitlab.
	GitLabURL string
	// GitLabTokenSecretID is FUNNELS_GITLAB_TOKEN_SECRET_ID: the secret
	// holding the token (with read_api) the definitions are read with.
	// A token of the service's own, not the caller's: Cube compiles a
	// project's model in the background, when no caller's token exists,
	// and the API and Cube must read the same files.
	GitLabTokenSecretID string
	// TTL is FUNNELS_TTL (default 30s): how long a project's set is kept
	// before it is read again.
	TTL time.Duration
	// Timeout is FUNNELS_TIMEOUT (default 5s): one read of a project's set.
	Timeout time.Duration
}

// FunnelsVariables lists the variables LoadFunnels reads.
func FunnelsVariables() []string {
	return []string{"FUNNELS_SOURCE", "FUNNELS_DIR", "FUNNELS_S3_BUCKET", "FUNNELS_S3_PREFIX",
		"FUNNELS_GITLAB_TOKEN_SECRET_ID", "GITLAB_URL", "FUNNELS_TTL", "FUNNELS_TIMEOUT"}
}

// MaxFunnelProjects bounds the projects whose sets the API keeps at once.
const MaxFunnelProjects = 10_000

// LoadFunnels reads and checks the funnels' configuration.
func LoadFunnels(getenv func(string) string) (Funnels, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	f := Funnels{Source: get("FUNNELS_SOURCE"), TTL: 30 * time.Second, Timeout: 5 * time.Second, S3Prefix: "funnels/"}
	var errs []error
	bad := func(name string, err error) { errs = append(errs, fmt.Errorf("%s %w", name, err)) }
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"FUNNELS_TTL", &f.TTL}, {"FUNNELS_TIMEOUT", &f.Timeout}} {
		if v := get(d.name); v != "" {
			n, err := time.ParseDuration(v)
			if err != nil || n < time.Second || n > time.Hour {
				bad(d.name, fmt.Errorf("must be a duration from 1s to 1h, got %q", v))
				continue
			}
			*d.to = n
		}
	}
	switch f.Source {
	case FunnelsNone:
	case FunnelsDir:
		if f.Dir = get("FUNNELS_DIR"); f.Dir == "" {
			bad("FUNNELS_DIR", errors.New("is required when FUNNELS_SOURCE is dir"))
		}
	case FunnelsS3:
		if f.S3Bucket = get("FUNNELS_S3_BUCKET"); f.S3Bucket == "" {
			bad("FUNNELS_S3_BUCKET", errors.New("is required when FUNNELS_SOURCE is s3"))
		}
		if v, ok := strings.CutSuffix(get("FUNNELS_S3_PREFIX"), "/"); v != "" || ok {
			f.S3Prefix = v + "/"
		}
	case FunnelsGitLab:
		if f.GitLabURL = get("GITLAB_URL"); !strings.HasPrefix(f.GitLabURL, "https://") && !strings.HasPrefix(f.GitLabURL, "http://") {
			bad("GITLAB_URL", errors.New("is required (http or https) when FUNNELS_SOURCE is gitlab"))
		}
		if f.GitLabTokenSecretID = get("FUNNELS_GITLAB_TOKEN_SECRET_ID"); f.GitLabTokenSecretID == "" {
			bad("FUNNELS_GITLAB_TOKEN_SECRET_ID", errors.New("is required when FUNNELS_SOURCE is gitlab"))
		}
	default:
		bad("FUNNELS_SOURCE", fmt.Errorf("must be dir, s3 or gitlab (or unset), got %q", f.Source))
	}
	if len(errs) > 0 {
		return Funnels{}, fmt.Errorf("invalid funnels configuration: %w", errors.Join(errs...))
	}
	return f, nil
}

// Cache builds the projects' funnel sets, or nil when there is no source.
// sm reads the GitLab token's secret (cached as the API's other secrets,
// by opts); the S3 client takes the process's AWS configuration
// (AWS_ENDPOINT_URL_S3 for an emulator).
func (f Funnels) Cache(ctx context.Context, sm secrets.GetSecretValueAPI, opts secrets.Options) (*funnels.Cache, error) {
	var src funnels.Source
	switch f.Source {
	case FunnelsNone:
		return nil, nil
	case FunnelsDir:
		src = funnels.Dir{Root: f.Dir}
	case FunnelsS3:
		aws, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("loading the AWS configuration for S3: %w", err)
		}
		src = funnels.S3{Client: s3.NewFromConfig(aws), Bucket: f.S3Bucket, Prefix: f.S3Prefix}
	case FunnelsGitLab:
		token := secrets.NewCache(secrets.SecretsManager(sm, f.GitLabTokenSecretID), opts)
		token.Prefetch()
		src = funnels.GitLab{BaseURL: f.GitLabURL, Token: token.Get, Client: &http.Client{Timeout: f.Timeout}}
	}
	return funnels.NewCache(src, f.TTL, f.Timeout, MaxFunnelProjects), nil
}

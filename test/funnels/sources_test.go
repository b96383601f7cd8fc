package funnels

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"productanalytics/internal/motoserver"
	"productanalytics/internal/stack"
	"productanalytics/shared/access/gitlabtest"
	"productanalytics/shared/funnels"
)

// readInCube reads project's definitions with cube/funnels.js from the
// source env configures, as Cube does, and returns the set's funnel names
// and refused files.
func readInCube(t *testing.T, env []string, project int64) (names, refused []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	script := `const { sourceFromEnv, read } = require('./funnels');
sourceFromEnv(process.env).files(process.argv[1], AbortSignal.timeout(20000))
  .then((files) => console.log(JSON.stringify(read(files))))
  .catch((e) => { console.error(e.message); process.exit(1); });`
	cmd := exec.CommandContext(ctx, "node", "-e", script, "--", strconv.FormatInt(project, 10))
	cmd.Dir = stack.CubeDir(root)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var set struct {
		Funnels []struct{ Name string }
		Invalid []struct{ File string }
	}
	if err := json.Unmarshal(out, &set); err != nil {
		t.Fatalf("node printed %s: %v", out, err)
	}
	for _, f := range set.Funnels {
		names = append(names, f.Name)
	}
	for _, f := range set.Invalid {
		refused = append(refused, f.File)
	}
	return names, refused
}

// readInAPI is the same with shared/funnels.
func readInAPI(t *testing.T, src funnels.Source, project int64) (names, refused []string) {
	t.Helper()
	set, err := funnels.Read(t.Context(), src, project)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set.Funnels {
		names = append(names, f.Name)
	}
	for _, f := range set.Invalid {
		refused = append(refused, f.File)
	}
	return names, refused
}

const sourceDef = "seconds_to_convert: 60\nsteps:\n  - {name: a, action: pageview, target: /a}\n"

// TestCubeReadsTheSources: Cube reads an S3 prefix (moto's S3) and a
// project's repository (a stand-in of GitLab's API) as the API does: the
// same funnels and the same files refused, another project's never.
func TestCubeReadsTheSources(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	t.Run("S3", func(t *testing.T) {
		moto, err := motoserver.Launch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer moto.Close()
		client := moto.S3()
		if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("defs")}); err != nil {
			t.Fatal(err)
		}
		for key, body := range map[string]string{
			"defs/1/Sign Up.yml": sourceDef, "defs/1/bad.yml": strings.Replace(sourceDef, "pageview", "click", 1),
			"defs/1/big.yml": sourceDef + "#" + strings.Repeat("x", 1<<20), "defs/1/sub/deep.yml": sourceDef,
			"defs/12/other.yml": sourceDef, "defs/1.yml": sourceDef,
		} {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("defs"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
				t.Fatal(err)
			}
		}
		env := []string{
			"CUBE_FUNNELS_S3_BUCKET=defs", "CUBE_FUNNELS_S3_PREFIX=defs/", "CUBE_FUNNELS_S3_PATH_STYLE=1",
			"AWS_ENDPOINT_URL_S3=" + moto.URL, "AWS_REGION=" + motoserver.Region,
			"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
		}
		src := funnels.S3{Client: client, Bucket: "defs", Prefix: "defs/"}
		for _, project := range []int64{1, 12, 3} {
			cubeNames, cubeRefused := readInCube(t, env, project)
			apiNames, apiRefused := readInAPI(t, src, project)
			if !slices.Equal(cubeNames, apiNames) || !slices.Equal(cubeRefused, apiRefused) {
				t.Errorf("project %d: Cube reads %v (refused %v), the API %v (refused %v)", project, cubeNames, cubeRefused, apiNames, apiRefused)
			}
			if project == 1 && (!slices.Equal(apiNames, []string{"sign_up"}) || len(apiRefused) != 2) {
				t.Errorf("project 1: %v, refused %v", apiNames, apiRefused)
			}
		}
	})
	t.Run("GitLab", func(t *testing.T) {
		repo := gitlabtest.NewRepository("service-token")
		defer repo.Close()
		repo.SetFiles(7, "main", map[string]string{
			funnels.GitLabFolder + "/Sign Up.yml": sourceDef, funnels.GitLabFolder + "/bad.yaml": "seconds_to_convert: 0\nsteps: []\n",
			funnels.GitLabFolder + "/notes.md": "x", "elsewhere.yml": sourceDef,
		})
		env := []string{"CUBE_FUNNELS_GITLAB_URL=" + repo.URL, "CUBE_FUNNELS_GITLAB_TOKEN=service-token"}
		src := funnels.GitLab{BaseURL: repo.URL, Token: funnels.StaticToken("service-token"), Client: repo.Client()}
		for _, project := range []int64{7, 8} {
			cubeNames, cubeRefused := readInCube(t, env, project)
			apiNames, apiRefused := readInAPI(t, src, project)
			if !slices.Equal(cubeNames, apiNames) || !slices.Equal(cubeRefused, apiRefused) {
				t.Errorf("project %d: Cube reads %v (refused %v), the API %v (refused %v)", project, cubeNames, cubeRefused, apiNames, apiRefused)
			}
			if project == 7 && (!slices.Equal(apiNames, []string{"sign_up"}) || !slices.Equal(apiRefused, []string{"bad.yaml"})) {
				t.Errorf("project 7: %v, refused %v", apiNames, apiRefused)
			}
		}
	})
}

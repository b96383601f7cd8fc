package funnels

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"productanalytics/internal/motoserver"
	"productanalytics/shared/access/gitlabtest"
)

func names(set Set) []string {
	var out []string
	for _, f := range set.Funnels {
		out = append(out, f.Name)
	}
	return out
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDir: a project reads its own folder's definition files, and no link
// or subfolder makes another file one of them.
func TestDir(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "1", "install.yml"), valid)
	write(t, filepath.Join(root, "1", "Sign Up.yaml"), valid)
	write(t, filepath.Join(root, "1", "readme.md"), valid)
	write(t, filepath.Join(root, "1", "sub", "deep.yml"), valid)
	write(t, filepath.Join(root, "1", "bad.yml"), strings.Replace(valid, "pageview", "click", 1))
	write(t, filepath.Join(root, "1", "big.yml"), valid+"#"+strings.Repeat("x", 1<<20))
	write(t, filepath.Join(root, "2", "secret.yml"), valid)
	if err := os.Symlink(filepath.Join(root, "2", "secret.yml"), filepath.Join(root, "1", "linked.yml")); err != nil {
		t.Fatal(err)
	}
	set, err := Read(t.Context(), Dir{Root: root}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(set); !slices.Equal(got, []string{"install", "sign_up"}) {
		t.Errorf("funnels %v, want install and sign_up", got)
	}
	var refused []string
	for _, inv := range set.Invalid {
		refused = append(refused, inv.File+": "+inv.Reason)
	}
	if len(refused) != 2 || !strings.Contains(refused[0], "bad.yml: step 1's action") || !strings.Contains(refused[1], "big.yml: is larger") {
		t.Errorf("refused %q", refused)
	}
	none, err := Read(t.Context(), Dir{Root: root}, 3)
	if err != nil || len(none.Funnels)+len(none.Invalid) != 0 {
		t.Errorf("a project without a folder: %+v, %v", none, err)
	}
}

// TestReadBounds: past MaxFunnels, and for a name given twice, files are
// refused with their reason.
func TestReadBounds(t *testing.T) {
	root := t.TempDir()
	for i := range MaxFunnels + 2 {
		write(t, filepath.Join(root, "1", "f"+strings.Repeat("a", i/26)+string(rune('a'+i%26))+".yml"), valid)
	}
	write(t, filepath.Join(root, "1", "fa.yaml"), valid)
	set, err := Read(t.Context(), Dir{Root: root}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Funnels) != MaxFunnels || len(set.Invalid) != 3 {
		t.Fatalf("%d funnels, %d refused, want %d and 3", len(set.Funnels), len(set.Invalid), MaxFunnels)
	}
	reasons := ""
	for _, inv := range set.Invalid {
		reasons += inv.Reason + "\n"
	}
	if !strings.Contains(reasons, "another file already defines the funnel fa") || !strings.Contains(reasons, "more than 50 funnels") {
		t.Errorf("reasons:\n%s", reasons)
	}
}

// TestS3 reads the prefix with the real SDK from moto's S3.
func TestS3(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	moto, err := motoserver.Launch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Close()
	client := moto.S3()
	put := func(key, body string) {
		t.Helper()
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("defs"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("defs")}); err != nil {
		t.Fatal(err)
	}
	put("funnels/1/install.yml", valid)
	put("funnels/1/nested/deep.yml", valid)
	put("funnels/1/big.yml", valid+"#"+strings.Repeat("x", 1<<20))
	put("funnels/12/other.yml", valid)
	put("funnels/2/theirs.yml", valid)
	src := S3{Client: client, Bucket: "defs", Prefix: "funnels/"}
	for _, c := range []struct {
		project  int64
		want     []string
		refusals int
	}{{1, []string{"install"}, 1}, {12, []string{"other"}, 0}, {3, nil, 0}} {
		set, err := Read(ctx, src, c.project)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(set); !slices.Equal(got, c.want) || len(set.Invalid) != c.refusals {
			t.Errorf("project %d: %v, %v; want %v and %d refused", c.project, got, set.Invalid, c.want, c.refusals)
		}
	}
	if _, err := Read(ctx, S3{Client: client, Bucket: "missing", Prefix: "funnels/"}, 1); err == nil {
		t.Error("a missing bucket reads")
	}
}

// TestGitLab reads a repository's definitions at its default branch from
// a stand-in of GitLab's API, with the configured token.
func TestGitLab(t *testing.T) {
	repo := gitlabtest.NewRepository("service-token")
	defer repo.Close()
	repo.SetFiles(7, "trunk", map[string]string{
		GitLabFolder + "/Install.yml": valid, GitLabFolder + "/notes.md": "x", GitLabFolder + "/bad.yaml": "steps: []\nseconds_to_convert: 5\n",
		GitLabFolder + "/deeper/x.yml": valid, "Install.yml": valid,
	})
	src := GitLab{BaseURL: repo.URL, Token: StaticToken("service-token"), Client: repo.Client()}
	set, err := Read(t.Context(), src, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(set); !slices.Equal(got, []string{"install"}) || len(set.Invalid) != 1 {
		t.Errorf("%v, %v; want install and bad.yaml refused", got, set.Invalid)
	}
	if set, err := Read(t.Context(), src, 8); err != nil || len(set.Funnels) != 0 {
		t.Errorf("a project GitLab does not know: %+v, %v", set, err)
	}
	bad := GitLab{BaseURL: repo.URL, Token: StaticToken("wrong"), Client: repo.Client()}
	if _, err := Read(t.Context(), bad, 7); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("a refused token: %v", err)
	}
}

// flaky fails when failing is set.
type flaky struct {
	Source
	failing atomic.Bool
	reads   atomic.Int64
}

func (f *flaky) Files(ctx context.Context, id int64) ([]File, error) {
	f.reads.Add(1)
	if f.failing.Load() {
		return nil, errors.New("unreachable")
	}
	return f.Source.Files(ctx, id)
}

// TestCache: a set is read once per TTL; a change applies after it; a
// failed read keeps the last set.
func TestCache(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "1", "a.yml"), valid)
	src := &flaky{Source: Dir{Root: root}}
	c := NewCache(src, time.Minute, time.Second, 10)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	for range 3 {
		if set, err := c.Set(t.Context(), 1); err != nil || !set.Has("a") {
			t.Fatalf("%+v, %v", set, err)
		}
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d reads within the TTL, want 1", n)
	}
	write(t, filepath.Join(root, "1", "b.yml"), valid)
	now = now.Add(time.Minute)
	if set, _ := c.Set(t.Context(), 1); !set.Has("b") {
		t.Errorf("after the TTL: %v", names(set))
	}
	src.failing.Store(true)
	now = now.Add(time.Minute)
	if set, err := c.Set(t.Context(), 1); err != nil || !set.Has("b") {
		t.Errorf("a failed read: %v, %v; want the last set", names(set), err)
	}
	if _, err := c.Set(t.Context(), 2); err == nil {
		t.Error("a project never read, its source failing: no error")
	}
}

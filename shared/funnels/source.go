package funnels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// File is one definition file as a source holds it.
type File struct {
	Name string
	Data []byte
}

// Source lists a project's definition files. A file over MaxFileBytes
// comes with MaxFileBytes+1 bytes only, for Parse to refuse.
type Source interface {
	Files(ctx context.Context, projectID int64) ([]File, error)
}

// Set is what a project's definitions give: the funnels, by name, and the
// files refused, with their reasons.
type Set struct {
	Funnels []Funnel
	Invalid []Invalid
}

// Has reports whether the set has the funnel named name.
func (s Set) Has(name string) bool {
	return slices.ContainsFunc(s.Funnels, func(f Funnel) bool { return f.Name == name })
}

// Read reads and checks a project's definitions from src. Files are taken
// in name order; past MaxFunnels, or with a name another file already
// gave (a.yml and a.yaml), a file is refused.
func Read(ctx context.Context, src Source, projectID int64) (Set, error) {
	files, err := src.Files(ctx, projectID)
	if err != nil {
		return Set{}, fmt.Errorf("reading the funnel definitions of project %d: %w", projectID, err)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	var s Set
	for _, file := range files {
		f, err := Parse(file.Name, file.Data)
		var inv *Invalid
		switch {
		case errors.Is(err, ErrSkipped):
			continue
		case errors.As(err, &inv):
			s.Invalid = append(s.Invalid, *inv)
			continue
		case err != nil:
			return Set{}, err
		case s.Has(f.Name):
			s.Invalid = append(s.Invalid, Invalid{File: file.Name, Reason: fmt.Sprintf("another file already defines the funnel %s", f.Name)})
			continue
		case len(s.Funnels) == MaxFunnels:
			s.Invalid = append(s.Invalid, Invalid{File: file.Name, Reason: fmt.Sprintf("the project has more than %d funnels", MaxFunnels)})
			continue
		}
		s.Funnels = append(s.Funnels, f)
	}
	slices.SortFunc(s.Funnels, func(a, b Funnel) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

// readBounded reads at most MaxFileBytes+1 bytes of r.
func readBounded(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
}

// Dir reads <Root>/<project id>/*.yml and *.yaml: regular files only, so
// that a link cannot make another project's file (or any file) one of this
// project's.
type Dir struct {
	Root string
}

// Files implements Source. A project without a folder has no funnels.
func (d Dir) Files(ctx context.Context, projectID int64) ([]File, error) {
	dir := filepath.Join(d.Root, strconv.FormatInt(projectID, 10))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range entries {
		if !e.Type().IsRegular() || !IsDefinition(e.Name()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := readFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, File{Name: e.Name(), Data: data})
	}
	return out, nil
}

// readFile reads a regular file at path, never what a link there names:
// the file opened must be the one Lstat finds, so that a file swapped for
// a link after the listing is not followed.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opened, err := f.Stat()
	if err != nil {
		return nil, err
	}
	there, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !there.Mode().IsRegular() || !os.SameFile(opened, there) {
		return nil, fs.ErrNotExist
	}
	return readBounded(f)
}

// S3API is what S3 needs of an S3 client (*s3.Client).
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// S3 reads s3://<Bucket>/<Prefix><project id>/*.yml and *.yaml (not the
// keys of deeper "folders").
type S3 struct {
	Client S3API
	Bucket string
	// Prefix is the keys' prefix before the project id, such as
	// "funnels/".
	Prefix string
}

// Files implements Source.
func (s S3) Files(ctx context.Context, projectID int64) ([]File, error) {
	prefix := s.Prefix + strconv.FormatInt(projectID, 10) + "/"
	in := &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(2 * MaxFunnels)}
	out, err := s.Client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("listing s3://%s/%s: %w", s.Bucket, prefix, err)
	}
	var files []File
	for _, o := range out.Contents {
		name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
		if !IsDefinition(name) {
			continue
		}
		if aws.ToInt64(o.Size) > MaxFileBytes {
			files = append(files, File{Name: name, Data: make([]byte, MaxFileBytes+1)})
			continue
		}
		obj, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: o.Key})
		if err != nil {
			return nil, fmt.Errorf("reading s3://%s/%s: %w", s.Bucket, aws.ToString(o.Key), err)
		}
		data, err := readBounded(obj.Body)
		obj.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading s3://%s/%s: %w", s.Bucket, aws.ToString(o.Key), err)
		}
		files = append(files, File{Name: name, Data: data})
	}
	return files, nil
}

// GitLabFolder is where GitLab reads a project's funnels, at its default
// branch.
const GitLabFolder = ".gitlab/analytics/funnels"

// GitLab reads a project's definitions from its repository through
// GitLab's REST API, at the default branch, as GitLab does. Token is the
// API's own token (a bot user's, or a group access token, with read_api),
// not a caller's: Cube compiles a project's model in the background, when
// no caller's token exists, and both must read the same files.
type GitLab struct {
	// BaseURL is GitLab's address, such as https://gitlab.com.
	BaseURL string
	// Token gives the token (from Secrets Manager, say) on each read.
	Token  func(ctx context.Context) (string, error)
	Client *http.Client
}

// Files implements Source. A project without the folder has no funnels.
func (g GitLab) Files(ctx context.Context, projectID int64) ([]File, error) {
	base := strings.TrimSuffix(g.BaseURL, "/") + "/api/v4/projects/" + strconv.FormatInt(projectID, 10)
	var project struct {
		DefaultBranch string `json:"default_branch"`
	}
	if found, err := g.get(ctx, base, &project); err != nil || !found || project.DefaultBranch == "" {
		return nil, err
	}
	ref := url.QueryEscape(project.DefaultBranch)
	var tree []struct {
		Name, Type, Path string
	}
	found, err := g.get(ctx, base+"/repository/tree?per_page=100&ref="+ref+"&path="+url.QueryEscape(GitLabFolder), &tree)
	if err != nil || !found {
		return nil, err
	}
	var files []File
	for _, e := range tree {
		if e.Type != "blob" || !IsDefinition(e.Name) || e.Path != GitLabFolder+"/"+e.Name {
			continue
		}
		var data []byte
		found, err := g.get(ctx, base+"/repository/files/"+url.PathEscape(e.Path)+"/raw?ref="+ref, &data)
		if err != nil {
			return nil, err
		}
		if found {
			files = append(files, File{Name: e.Name, Data: data})
		}
	}
	return files, nil
}

// StaticToken is a Token that is always tok.
func StaticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// get reads a GitLab API answer into v (JSON, or the bytes into a
// *[]byte). A 404 is found == false.
func (g GitLab) get(ctx context.Context, u string, v any) (found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	token, err := g.Token(ctx)
	if err != nil {
		return false, fmt.Errorf("reading the token GitLab's funnels are read with: %w", err)
	}
	req.Header.Set("PRIVATE-TOKEN", token)
	client := g.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		// The URL holds no secret; the token is in a header.
		return false, fmt.Errorf("asking GitLab: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("asking GitLab for %s: status %d", req.URL.Path, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 4*MaxFileBytes))
	if err != nil {
		return false, fmt.Errorf("reading GitLab's answer: %w", err)
	}
	if b, ok := v.(*[]byte); ok {
		*b = body
		if len(body) > MaxFileBytes {
			*b = body[:MaxFileBytes+1]
		}
		return true, nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("reading GitLab's answer for %s: %w", req.URL.Path, err)
	}
	return true, nil
}

// Cache keeps each project's Set for TTL, so that a request costs no
// read of the source, and a changed definition applies within TTL. When a
// read fails, the last Set read stays in use, and the error is returned
// only for a project never read.
type Cache struct {
	src     Source
	ttl     time.Duration
	timeout time.Duration
	max     int
	now     func() time.Time

	mu      sync.Mutex
	entries map[int64]*entry
}

type entry struct {
	mu   sync.Mutex // held while the set is read
	set  Set
	read time.Time
	ok   bool
}

// NewCache returns a cache of src's sets kept ttl, for at most max
// projects; each read of the source has timeout.
func NewCache(src Source, ttl, timeout time.Duration, max int) *Cache {
	return &Cache{src: src, ttl: ttl, timeout: timeout, max: max, now: time.Now, entries: map[int64]*entry{}}
}

// Set returns project's funnels, read at most TTL ago.
func (c *Cache) Set(ctx context.Context, projectID int64) (Set, error) {
	c.mu.Lock()
	e := c.entries[projectID]
	if e == nil {
		if len(c.entries) >= c.max {
			// Forget the stalest entries rather than grow: the next
			// request of theirs reads them again.
			c.evict()
		}
		e = &entry{}
		c.entries[projectID] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok && c.now().Sub(e.read) < c.ttl {
		return e.set, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	set, err := Read(ctx, c.src, projectID)
	if err != nil {
		if e.ok {
			return e.set, nil
		}
		return Set{}, err
	}
	e.set, e.read, e.ok = set, c.now(), true
	return set, nil
}

func (c *Cache) evict() {
	cut := c.now().Add(-c.ttl)
	for id, e := range c.entries {
		if e.mu.TryLock() {
			if !e.ok || e.read.Before(cut) || len(c.entries) >= c.max {
				delete(c.entries, id)
			}
			e.mu.Unlock()
		}
		if len(c.entries) < c.max/2 {
			return
		}
	}
}

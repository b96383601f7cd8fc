package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/web"
	"productanalytics/shared/config"
)

// PageTokenTTL is how long the caller token the dashboards page gets from
// the local stack stays valid; the page asks for a fresh one before each
// drawing.
const PageTokenTTL = time.Hour

// local answers the dashboards page's local.json: the projects with demo
// data and, when the API checks callers with the stack's own key, a token
// that reads them.
func (s *Stack) local(root string, cfg config.Config) func(context.Context) (web.Local, error) {
	ownKey := cfg.AuthMode == config.AuthJWT && cfg.JWKSURL == ""
	return func(ctx context.Context) (web.Local, error) {
		projects, err := s.projects.get(ctx, root, s.db)
		if err != nil {
			return web.Local{}, err
		}
		l := web.Local{Projects: projects}
		if ownKey {
			l.Expires = time.Now().Add(PageTokenTTL).UTC().Truncate(time.Second)
			l.Token = pageToken(cfg, l.Expires, projects)
		}
		return l, nil
	}
}

// pageToken is a caller token that reads projects until expires, with the
// claims the API's configuration asks for (issuer, audience, the projects
// claim's name), signed with the stack's key.
func pageToken(cfg config.Config, expires time.Time, projects []int64) string {
	claims := jwt.MapClaims{
		"sub":                "local-dashboards-page",
		cfg.JWTProjectsClaim: projects,
		"iat":                time.Now().Unix(),
		"exp":                expires.Unix(),
	}
	if cfg.JWTIssuer != "" {
		claims["iss"] = cfg.JWTIssuer
	}
	if cfg.JWTAudience != "" {
		claims["aud"] = cfg.JWTAudience
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(LocalCallerKey))
	if err != nil {
		panic(err) // HS256 signing with a []byte key cannot fail
	}
	return tok
}

// projectList finds the projects of the events database once: the data
// does not change while the stack runs.
type projectList struct {
	mu  sync.Mutex
	ids []int64
}

// get returns the projects with a schema in db, asking DuckDB the first
// time only; a failure is not kept, so the next call asks again.
func (p *projectList) get(ctx context.Context, root, db string) ([]int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids != nil {
		return p.ids, nil
	}
	ids, err := Projects(ctx, root, db)
	if err != nil {
		return nil, err
	}
	p.ids = ids
	return ids, nil
}

// Projects lists the projects that have events in db (a schema
// gitlab_project_<id> each), in increasing order. It reads db beside a
// running Cube (DuckDB lets read-only opens share a file).
func Projects(ctx context.Context, root, db string) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	abs, err := filepath.Abs(db)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(CubeDir(root), "scripts", "query.js"), abs,
		`SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE 'gitlab_project_%'`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the projects of %s: %w: %s", filepath.Base(db), err, strings.TrimSpace(stderr.String()))
	}
	var rows []struct{ Name string }
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("listing the projects of %s: %w", filepath.Base(db), err)
	}
	ids := []int64{}
	for _, r := range rows {
		id, err := strconv.ParseInt(strings.TrimPrefix(r.Name, "gitlab_project_"), 10, 64)
		if err == nil && id > 0 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

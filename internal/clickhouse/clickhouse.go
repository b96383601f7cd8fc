// Package clickhouse runs a ClickHouse server for the tests of the data
// model on the production store: on loopback, with its configuration and
// data in a folder of the caller's, an administrator for loading events, and
// one read-only user per project that may read that project's database
// only, as cube/clickhouse.js expects them.
package clickhouse

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"productanalytics/internal/child"
	"productanalytics/internal/logcheck"
)

// StartTimeout bounds how long Start waits for the server to answer.
const StartTimeout = 60 * time.Second

// queryTimeout bounds one statement; loading a project's events is one.
const queryTimeout = 2 * time.Minute

// Admin is the administrator's user name: it loads the events and may do
// anything, from loopback only.
const Admin = "default"

// Options configure a Server.
type Options struct {
	// Dir is the server's own folder, which must exist: its configuration,
	// data and temporary files go there.
	Dir string
	// Tenants are the projects that get a read-only user, gitlab_project_<id>,
	// allowed that project's database only.
	Tenants []int64
	// PasswordKey derives each tenant user's password (TenantPassword).
	PasswordKey string
	// LogQueries records every query, with the user that ran it, in
	// system.query_log, so that a test can check who ran what.
	LogQueries bool
	// Log receives the server's own log (default: discarded).
	Log io.Writer
}

// Server is a running ClickHouse server.
type Server struct {
	// URL is its HTTP interface, http://127.0.0.1:PORT.
	URL string
	// Version is what the server reports, e.g. "18.16.1".
	Version string

	proc      *child.Process
	adminPass string
	client    *http.Client
}

// AppID is the appId, user and database name of project.
func AppID(project int64) string { return fmt.Sprintf("gitlab_project_%d", project) }

// TenantPassword is the password of the ClickHouse user appID under key,
// as cube/clickhouse.js derives it: HMAC-SHA256 of the appId, in hex.
func TenantPassword(key, appID string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(appID))
	return hex.EncodeToString(m.Sum(nil))
}

// Start starts clickhouse-server (see Install) on a free port of 127.0.0.1
// and returns once it answers. The caller must Close it.
func Start(ctx context.Context, bin string, o Options) (s *Server, err error) {
	if fi, err := os.Stat(o.Dir); err != nil {
		return nil, fmt.Errorf("the ClickHouse server's folder: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("the ClickHouse server's folder %s is not a folder", o.Dir)
	}
	if len(o.Tenants) > 0 && o.PasswordKey == "" {
		return nil, errors.New("tenant users need a password key")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	s = &Server{adminPass: randomHex(16), client: &http.Client{Timeout: queryTimeout}}
	cfg := filepath.Join(dir, "config.xml")
	if err := os.WriteFile(cfg, []byte(serverConfig(dir, o.LogQueries)), 0o600); err != nil {
		return nil, fmt.Errorf("writing the server's configuration: %w", err)
	}
	users := usersConfig(s.adminPass, o.Tenants, o.PasswordKey, o.LogQueries)
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o600); err != nil {
		return nil, fmt.Errorf("writing the server's users: %w", err)
	}

	if s.proc, err = child.Start(exec.Command(bin, "--config-file="+cfg), o.Log); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	// Port 0: the kernel picks a free port as the server binds it. The
	// server does not print it, so it is read from the server's sockets.
	err = s.proc.WaitReady(ctx, 20*time.Millisecond, func(ctx context.Context) bool {
		if s.URL == "" {
			ports, err := listeningPorts(ctx, s.proc.Pid())
			if err != nil || len(ports) != 1 {
				return false
			}
			s.URL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		}
		return s.ping(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse-server: %w; its log:\n%s", err, logcheck.LastLines(s.proc.Output(), 15))
	}
	v, err := s.Admin(ctx, "SELECT version()")
	if err != nil {
		return nil, fmt.Errorf("asking the server's version: %w", err)
	}
	s.Version = strings.TrimSpace(v)
	return s, nil
}

// Close stops the server and waits until it has exited. It is safe to call
// more than once.
func (s *Server) Close() error {
	if s.proc == nil {
		return nil
	}
	return s.proc.Stop(10 * time.Second)
}

// Output is the server's log so far (its latest megabyte).
func (s *Server) Output() string { return s.proc.Output() }

// Secrets are the server's passwords, for a check that none reached a log.
func (s *Server) Secrets() []string { return []string{s.adminPass} }

func (s *Server) ping(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/ping", nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "Ok."
}

// Error is a statement ClickHouse refused.
type Error struct {
	// Code is ClickHouse's error code, e.g. 291 for "access denied"; 0 when
	// the answer names none.
	Code int
	// Message is ClickHouse's text.
	Message string
}

func (e *Error) Error() string { return "clickhouse refused the statement: " + e.Message }

var errorCode = regexp.MustCompile(`^Code: ([0-9]+)`)

// Query runs one statement as user over the HTTP interface and returns the
// answer's body (TabSeparated unless the statement names a FORMAT). A
// statement ClickHouse refuses is an *Error.
func (s *Server) Query(ctx context.Context, user, password, sql string) (string, error) {
	return s.send(ctx, user, password, url.Values{}, strings.NewReader(sql))
}

// Admin runs one statement as the administrator.
func (s *Server) Admin(ctx context.Context, sql string) (string, error) {
	return s.Query(ctx, Admin, s.adminPass, sql)
}

// send posts body to the HTTP interface with params, as user.
func (s *Server) send(ctx context.Context, user, password string, params url.Values, body io.Reader) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	u := s.URL + "/"
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return "", err
	}
	// Not in the address, which servers and proxies log.
	req.SetBasicAuth(user, password)
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking ClickHouse: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", fmt.Errorf("reading ClickHouse's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(b))
		e := &Error{Message: msg}
		if m := errorCode.FindStringSubmatch(msg); m != nil {
			e.Code, _ = strconv.Atoi(m[1])
		}
		return "", e
	}
	return string(b), nil
}

// HasDateTime64 reports whether the server has the DateTime64 type
// (ClickHouse 20.1 and later).
func (s *Server) HasDateTime64() bool {
	major, _, _ := strings.Cut(s.Version, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 20
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

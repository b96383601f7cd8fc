// Package stack runs the product analytics API locally with the real parts
// it talks to in production: a Secrets Manager emulator (moto_server) holding
// the keys, and a real Cube over demo events, one DuckDB file per project
// (or, for tests, a ClickHouse server with a user per project), or several
// Cubes over the same events, each a deployment with its own key.
// `make run` and the integration tests start it the same way.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/child"
	"productanalytics/internal/motoserver"
	"productanalytics/internal/server"
	"productanalytics/internal/web"
	"productanalytics/shared/app"
	"productanalytics/shared/config"
	"productanalytics/shared/deploy"
)

// The local stack's keys. They are fixed so that a caller token made with
// `make token` or kept in events/ works whether or not the stack is running;
// they protect nothing but demo data on loopback.
const (
	LocalCubeKey   = "local-development-cube-api-key-not-for-production"
	LocalCallerKey = "local-development-caller-key-not-for-production"
)

// The secrets' names in the emulator.
const (
	CubeKeySecret   = "product-analytics/cube-api-key"
	CallerKeySecret = "product-analytics/caller-token-key"
)

// Options configure a Stack. Zero ports mean free ones.
type Options struct {
	// Root is the project's root folder (the one holding go.mod).
	Root string
	// DataDir is the folder of the projects' DuckDB files (see
	// internal/eventsdb); it must exist. With ClickHouse, Cube does not read
	// them, and the dashboards page offers their projects.
	DataDir string
	// Host is the address the API, Cube and the Secrets Manager emulator
	// listen on: 127.0.0.1 (the default), or one containers reach too
	// (0.0.0.0, or a Docker bridge's address) for `sam local`.
	Host string
	// ClickHouse, when set, has Cube read each project from a ClickHouse
	// server as that project's own user (cube/clickhouse.js), instead of
	// from DataDir.
	ClickHouse *ClickHouse
	// APIPort and CubePort are the ports on Host; with several Cubes,
	// CubePort is the first's and the others follow it.
	APIPort, CubePort int
	// Cubes is how many Cube processes run (default 1, at most MaxCubes),
	// each a deployment of its own (cube-1, cube-2, ...) with its own key,
	// over the same events; the API routes each project to one
	// (CUBE_DEPLOYMENTS). One Cube is the configuration's single
	// deployment (CUBE_API_URL).
	Cubes int
	// ContinueWait is Cube's continue-wait timeout (default 5s, whole seconds).
	ContinueWait time.Duration
	// TestModel adds Cube's test-only cubes; SlowQuery is how long their
	// queries take.
	TestModel bool
	SlowQuery time.Duration
	// WithoutQueryGuard starts Cube without its query guard
	// (cube/queryguard.js), so that tests can show the store's isolation
	// holding on its own. Cube accepts it only with TestModel.
	WithoutQueryGuard bool
	// Env adds API configuration (config.Variables) over the stack's own.
	Env map[string]string
	// FunnelsDir is the folder of the projects' funnel definitions,
	// <dir>/<project id>/*.yml, which both Cube and the API read; empty:
	// no funnels.
	FunnelsDir string
	// CubeEnv adds variables of Cube's (NAME=value), e.g. the bounds of its
	// per-project state (cube/README.md), over the stack's own.
	CubeEnv []string
	// Dashboards are the dashboards page's (default: GitLab's, web.Dashboards).
	Dashboards []web.Dashboard
	// CORSAllowOrigins are the origins whose pages may call the API from a
	// browser, as template.yaml's CorsAllowOrigins ("*" for any); none
	// means no CORS, as in the template by default.
	CORSAllowOrigins []string
	// SuperviseCube restarts each Cube each time it exits on its own, with a
	// growing delay between attempts, as a container's restart policy
	// would; each restart is logged to Log. `make run` sets it; tests that
	// break Cube on purpose leave it off.
	SuperviseCube bool
	// Log receives the API's logs, CubeLog Cube's (default: discarded).
	Log, CubeLog io.Writer
}

// ClickHouse is the ClickHouse server a Cube in ClickHouse mode reads.
type ClickHouse struct {
	// URL is its HTTP interface, e.g. http://127.0.0.1:8123.
	URL string
	// PasswordKey is the key each project's password derives from (see
	// internal/clickhouse.TenantPassword).
	PasswordKey string
}

// Stack is a running local stack.
type Stack struct {
	// APIURL, CubeURL and MotoURL are the services' base addresses;
	// CubeURL is the first Cube's.
	APIURL, CubeURL, MotoURL string
	// CubeURLs are every Cube's, in the order of Cube(i).
	CubeURLs []string

	moto *motoserver.Server
	api  *http.Server

	opts    Options
	dataDir string
	// router places projects as the stack's API does.
	router *deploy.Router

	// mu guards each Cube's process and key, which change when a test
	// restarts it, and closing.
	mu      sync.Mutex
	cubes   []*cubeProc
	closing bool

	// stopSupervisor ends the Cube supervisors, whose end supervised tells.
	stopSupervisor chan struct{}
	supervised     sync.WaitGroup
}

// Start starts moto_server with the keys, Cube, and the API, and returns
// once all three answer. On failure it stops whatever it started.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.CubeLog == nil {
		o.CubeLog = io.Discard
	}
	if o.ContinueWait <= 0 {
		o.ContinueWait = 5 * time.Second
	}
	if o.Cubes == 0 {
		o.Cubes = 1
	}
	if o.Cubes < 1 || o.Cubes > MaxCubes {
		return nil, fmt.Errorf("%d Cubes: the local stack runs 1 to %d", o.Cubes, MaxCubes)
	}
	if fi, err := os.Stat(o.DataDir); err != nil {
		return nil, fmt.Errorf("the events folder: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("the events folder %s is not a folder", o.DataDir)
	}
	apiLn, err := listen(o.host(), o.APIPort, "the API")
	if err != nil {
		return nil, err
	}
	s = &Stack{opts: o, dataDir: o.DataDir, cubes: newCubes(o.Cubes, o.CubePort), CubeURLs: make([]string, o.Cubes)}
	// Kept apart from s, which a failing return sets to nil.
	partial := s
	defer func() {
		if err != nil {
			apiLn.Close()
			partial.Close()
		}
	}()

	if s.moto, err = motoserver.LaunchOn(ctx, o.host()); err != nil {
		return nil, err
	}
	s.MotoURL = s.moto.URL
	if err := s.createSecrets(ctx); err != nil {
		return nil, err
	}

	if err := s.startCubes(ctx); err != nil {
		return nil, err
	}
	s.CubeURL = s.CubeURLs[0]

	if o.SuperviseCube {
		s.stopSupervisor = make(chan struct{})
		log := slog.New(slog.NewJSONHandler(o.Log, nil))
		for _, c := range s.cubes {
			s.supervised.Go(func() { s.superviseCube(c, s.stopSupervisor, log) })
		}
	}

	h, cfg, err := s.buildAPI(ctx, o.Env, o.Log)
	if err != nil {
		return nil, err
	}
	// The placements the API was configured with (Options.Env) hold here
	// too.
	if s.router, err = deploy.NewRouter(s.Deployments(), cfg.Placements); err != nil {
		return nil, err
	}
	// CORS is the API's only, as API Gateway's is: the page's local.json
	// (a token) is never readable by pages of other origins.
	page := web.Handler(web.Options{Root: o.Root, Dashboards: o.Dashboards, Local: s.local(cfg)}, withCORS(o.CORSAllowOrigins, h))
	s.api = server.New(page, server.Options{})
	_, apiPort, _ := net.SplitHostPort(apiLn.Addr().String())
	s.APIURL = "http://" + net.JoinHostPort(motoserver.ConnectHost(o.host()), apiPort)
	go s.api.Serve(apiLn)
	return s, nil
}

// Close stops the API, the Cubes and moto_server.
func (s *Stack) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	if s.stopSupervisor != nil {
		close(s.stopSupervisor)
		s.supervised.Wait()
		s.stopSupervisor = nil
	}
	var errs []error
	if s.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, s.api.Shutdown(ctx))
		cancel()
	}
	s.mu.Lock()
	var procs []*child.Process
	for _, c := range s.cubes {
		if c.proc != nil {
			procs = append(procs, c.proc)
		}
	}
	s.mu.Unlock()
	for _, p := range procs {
		// A frozen Cube would not see the SIGTERM.
		p.Thaw()
		errs = append(errs, p.Stop(5*time.Second))
	}
	if s.moto != nil {
		errs = append(errs, s.moto.Close())
	}
	return errors.Join(errs...)
}

// Token returns a caller token for the local stack, valid for ttl, that may
// read the given projects.
func Token(ttl time.Duration, projects ...int64) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":      "local-developer",
		"projects": projects,
		"iat":      time.Now().Unix(),
		"exp":      time.Now().Add(ttl).Unix(),
	}).SignedString([]byte(LocalCallerKey))
	if err != nil {
		panic(err) // HS256 signing with a []byte key cannot fail
	}
	return tok
}

// createSecrets puts the keys into the emulator, each Cube's as it is now.
func (s *Stack) createSecrets(ctx context.Context) error {
	sm := s.moto.Client()
	secrets := map[string]string{CallerKeySecret: LocalCallerKey}
	s.mu.Lock()
	for _, c := range s.cubes {
		secrets[c.secret] = c.key
	}
	s.mu.Unlock()
	for name, value := range secrets {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := sm.CreateSecret(cctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		cancel()
		if err != nil {
			return fmt.Errorf("creating secret %s in moto_server: %w", name, err)
		}
	}
	return nil
}

// APIEnv is the API's configuration for this stack, as the Lambda functions
// would get it from template.yaml.
func (s *Stack) APIEnv() map[string]string {
	env := s.FunctionEnv("")
	env["AWS_REGION"] = motoserver.Region
	env["AWS_ACCESS_KEY_ID"] = "test"
	env["AWS_SECRET_ACCESS_KEY"] = "test"
	if s.opts.FunnelsDir != "" {
		env["FUNNELS_SOURCE"], env["FUNNELS_DIR"] = "dir", s.opts.FunnelsDir
	}
	return env
}

// FunctionEnv is what points a function at this stack: its Cubes, the
// Secrets Manager emulator and the secrets' names, reached at host (as a
// container names the machine the stack runs on, e.g.
// host.docker.internal; empty: the addresses the stack itself uses). It
// is what `sam local`'s --env-vars file sets. One Cube is the single
// deployment of CUBE_API_URL; several are listed in CUBE_DEPLOYMENTS, with
// Options.Env's CUBE_PLACEMENTS.
func (s *Stack) FunctionEnv(host string) map[string]string {
	env := map[string]string{
		"AUTH_MODE":                        config.AuthJWT,
		"AUTH_JWT_SECRET_ID":               CallerKeySecret,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": onHost(s.MotoURL, host),
	}
	if len(s.cubes) == 1 {
		env["CUBE_API_URL"], env["CUBE_API_KEY_SECRET_ID"] = onHost(s.CubeURL, host), CubeKeySecret
	} else {
		env["CUBE_DEPLOYMENTS"] = s.deploymentsSpec(host)
	}
	// Every function places projects as the stack's API does.
	if p := s.opts.Env["CUBE_PLACEMENTS"]; p != "" {
		env["CUBE_PLACEMENTS"] = p
	}
	return env
}

// onHost is the http URL u with its host replaced by host, when set.
func onHost(u, host string) string {
	if host == "" {
		return u
	}
	hostport := strings.TrimPrefix(u, "http://")
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return u
	}
	return "http://" + net.JoinHostPort(host, port)
}

func (o Options) host() string {
	if o.Host == "" {
		return "127.0.0.1"
	}
	return o.Host
}

// buildAPI builds the API handler the way a Lambda function does, from
// environment variables (the stack's, with env over them), with its
// secrets in this stack's moto_server.
func (s *Stack) buildAPI(ctx context.Context, over map[string]string, log io.Writer) (http.Handler, config.Config, error) {
	env := s.APIEnv()
	maps.Copy(env, over)
	getenv := func(k string) string { return env[k] }
	h, _, err := app.New(ctx, app.Options{Getenv: getenv, Log: log, SecretsManager: s.moto.Client()})
	if err != nil {
		return nil, config.Config{}, fmt.Errorf("the API's configuration: %w", err)
	}
	// Valid, since app.New built the API from it: the page's token follows it.
	cfg, _ := config.Load(getenv)
	return h, cfg, nil
}

func listen(host string, port int, what string) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s cannot listen on %s (is the stack already running?): %w", what, addr, err)
	}
	return ln, nil
}

// CubeDir is the folder of the Cube deployment under root.
func CubeDir(root string) string { return filepath.Join(root, "cube") }

// CubePID is the process id of the stack's (first) Cube, for measuring it.
func (s *Stack) CubePID() int { return s.Cube(0).PID() }

// SecretsManager returns a client of the stack's Secrets Manager emulator,
// which holds the keys.
func (s *Stack) SecretsManager() *secretsmanager.Client { return s.moto.Client() }

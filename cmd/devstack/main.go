// Command devstack runs the product analytics API locally with a real Cube,
// demo data and a Secrets Manager emulator, and makes caller tokens for it.
//
// Usage:
//
//	devstack run                  # what `make run` does
//	devstack token -project 1     # what `make token PROJECT=1` does
//	devstack page -out bin/page   # what `make page` does
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"productanalytics/internal/logfile"
	"productanalytics/internal/samlocal"
	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/internal/web"
	"productanalytics/shared/config"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: devstack run | devstack token -project ID [-ttl 1h] | devstack page -out DIR")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "token":
		err = token(os.Args[2:], os.Stdout)
	case "page":
		err = page(os.Args[2:], os.Stderr)
	default:
		err = fmt.Errorf("unknown command %q: use run, token or page", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func token(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	project := fs.String("project", "", "the project ID the token may read")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := strconv.ParseInt(*project, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("-project must be a positive project ID, got %q", *project)
	}
	fmt.Fprintf(out, "# caller token for project %d, valid for %s, signed with the local stack's key\n", id, *ttl)
	fmt.Fprintln(out, stack.Token(*ttl, id))
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	data := fs.String("data", ".local/events", "the `folder` of demo events, one DuckDB file per project (generated when it holds none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// make does not pass SIGTERM on to its children: end with the parent.
	ctx = endWithParent(ctx)
	start := time.Now()

	root, err := stack.Root(".")
	if err != nil {
		return err
	}
	apiPort, err := portEnv("PORT", 3000)
	if err != nil {
		return err
	}
	cubePort, err := portEnv("CUBE_PORT", 4000)
	if err != nil {
		return err
	}
	cubes, err := cubesEnv(os.Getenv("CUBES"))
	if err != nil {
		return err
	}
	host, err := listenEnv(os.Getenv("LISTEN"))
	if err != nil {
		return err
	}
	dataDir := *data
	if !filepath.IsAbs(dataDir) {
		dataDir = filepath.Join(root, dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		return err
	}
	if err := stack.InstallPage(ctx, root, os.Stderr); err != nil {
		return err
	}
	if err := stack.GenerateData(ctx, root, dataDir, os.Stderr); err != nil {
		return err
	}
	// Beside the events: the demo funnels, copied once; the folder is then
	// the user's, read again by Cube and the API while the stack runs.
	funnelsDir := filepath.Join(filepath.Dir(dataDir), "funnels")
	if err := stack.SeedFunnels(root, funnelsDir); err != nil {
		return err
	}
	// Beside the data folder rather than in it: the folder is the events'.
	// Rotated now and at its size bound; a stack already running keeps its
	// own, and this one takes cube-2.log.
	cubeLog, err := logfile.Open(filepath.Join(filepath.Dir(dataDir), "cube.log"), 0)
	if err != nil {
		return err
	}
	defer cubeLog.Close()
	cubeLogPath := cubeLog.Path()
	apiEnv := configFromEnv(os.Getenv)
	s, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dataDir, Host: host, APIPort: apiPort, CubePort: cubePort, Cubes: cubes, Log: os.Stdout, CubeLog: cubeLog, Env: apiEnv,
		FunnelsDir: funnelsDir, SuperviseCube: true, CORSAllowOrigins: origins(os.Getenv("CORS_ALLOW_ORIGINS"))})
	if err != nil {
		return fmt.Errorf("%w (Cube's log: %s)", err, cubeLogPath)
	}
	// Beside Cube's log: what `sam local` needs to reach this stack.
	samEnv := filepath.Join(filepath.Dir(dataDir), filepath.Base(samlocal.EnvFileName))
	if err := writeSAMEnv(root, samEnv, s.FunctionEnv(containerHost)); err != nil {
		s.Close()
		return fmt.Errorf("writing the sam local environment file: %w", err)
	}
	credential := "Authorization: Bearer " + stack.Token(time.Hour, 1)
	about := "a token for project 1, valid for one hour; make token PROJECT=2 makes others"
	switch {
	case apiEnv["AUTH_MODE"] == "gitlab":
		credential, about = "PRIVATE-TOKEN: <a GitLab token>", "callers are checked against "+apiEnv["GITLAB_URL"]
	case apiEnv["AUTH_JWKS_URL"] != "":
		credential, about = "Authorization: Bearer <a token of your issuer>", "tokens are checked with the keys of "+apiEnv["AUTH_JWKS_URL"]
	}
	fmt.Fprintf(os.Stderr, `
product analytics API ready at %s in %.1fs (%s, Secrets Manager emulator at %s, Cube log in %s)

The Audience and Behavior dashboards: open %s/
Funnels: %s/<project id>/*.yml (project 1 has the demo funnel), read again within 30 s of a change

Try the API (%s):

  curl -s -X POST %s/api/v4/projects/1/product_analytics/request/load \
    -H '%s' \
    -H 'Content-Type: application/json' \
    -d '%s'

%s
Ctrl-C stops everything.
`, s.APIURL, time.Since(start).Seconds(), cubesBanner(s), s.MotoURL, cubeLogPath, s.APIURL, funnelsDir, about, s.APIURL, credential, seed.Body(seed.TrackedEvents),
		samBanner(root, samEnv, host, s.APIURL))
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping...")
	return s.Close()
}

// containerHost is how a container (`sam local`'s) names the machine it
// runs on: Docker Desktop provides it, Linux's Docker with --add-host.
const containerHost = "host.docker.internal"

// samBanner tells how to run the Lambda functions under `sam local`
// against this stack.
func samBanner(root, envFile, host, apiURL string) string {
	if rel, err := filepath.Rel(root, envFile); err == nil && !strings.HasPrefix(rel, "..") {
		envFile = rel
	}
	linux := runtime.GOOS == "linux"
	apiPort := 3000
	if _, p, err := net.SplitHostPort(strings.TrimPrefix(apiURL, "http://")); err == nil {
		apiPort, _ = strconv.Atoi(p)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The Lambda functions under sam local (Docker), against this stack (%s reaches it from containers):\n\n", containerHost)
	for _, c := range samlocal.Commands(envFile, linux, apiPort+1) {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	if ip := net.ParseIP(host); linux && ip != nil && ip.IsLoopback() {
		b.WriteString("\n  (Linux: containers reach this stack only when it listens beyond loopback: LISTEN=0.0.0.0 make run)\n")
	}
	return b.String()
}

// writeSAMEnv writes the --env-vars file setting vars for the functions of
// the project's template.yaml that declare them.
func writeSAMEnv(root, path string, vars map[string]string) error {
	tpl, err := samlocal.ReadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	f, err := samlocal.NewEnvFile(tpl, vars)
	if err != nil {
		return err
	}
	return f.Write(path)
}

// listenEnv reads LISTEN, the address the stack listens on: an IP address,
// 127.0.0.1 by default.
func listenEnv(v string) (string, error) {
	if v == "" {
		return "127.0.0.1", nil
	}
	if net.ParseIP(v) == nil {
		return "", fmt.Errorf("LISTEN=%q is not an IP address (127.0.0.1, 0.0.0.0, or a Docker bridge's address)", v)
	}
	return v, nil
}

// page writes the dashboards page as static files into a folder, for a
// static host in front of a deployed API.
func page(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("page", flag.ContinueOnError)
	out := fs.String("out", "bin/page", "the folder to write the page into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := stack.Root(".")
	if err != nil {
		return err
	}
	if err := stack.InstallPage(ctx, root, log); err != nil {
		return err
	}
	if err := web.Export(root, *out, nil); err != nil {
		return err
	}
	fmt.Fprintf(log, "the dashboards page is in %s: copy it to any static host (see the README)\n", *out)
	return nil
}

// configFromEnv takes the API configuration a developer set in the
// environment (AUTH_MODE=gitlab GITLAB_URL=... make run), except what the
// stack itself provides: its Cubes and the keys in its emulator.
// CUBE_PLACEMENTS is taken: it places projects on the stack's Cubes
// (cube-1, cube-2, ...).
func configFromEnv(getenv func(string) string) map[string]string {
	env := map[string]string{}
	for _, k := range config.Variables() {
		switch k {
		case "CUBE_API_URL", "CUBE_API_KEY_SECRET_ID", "CUBE_DEPLOYMENTS", "AUTH_JWT_SECRET_ID":
			continue
		}
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	if env["AUTH_JWKS_URL"] != "" {
		env["AUTH_JWT_SECRET_ID"] = "" // the configuration takes one source of keys
	}
	return env
}

// origins reads CORS_ALLOW_ORIGINS, comma-separated as template.yaml's
// CorsAllowOrigins, so that a page hosted elsewhere (make page) can be
// tried against the local API.
func origins(v string) []string {
	var out []string
	for o := range strings.SplitSeq(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, strings.TrimRight(o, "/"))
		}
	}
	return out
}

// cubesEnv reads CUBES, how many Cubes run (make run CUBES=3): 1 by
// default.
func cubesEnv(v string) (int, error) {
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > stack.MaxCubes {
		return 0, fmt.Errorf("CUBES=%q is not a number of Cubes from 1 to %d", v, stack.MaxCubes)
	}
	return n, nil
}

// cubesBanner says where the Cubes are: "Cube at URL", or with several,
// each deployment's name and address.
func cubesBanner(s *stack.Stack) string {
	if s.Cubes() == 1 {
		return "Cube at " + s.CubeURL
	}
	parts := make([]string, s.Cubes())
	for i := range parts {
		c := s.Cube(i)
		parts[i] = c.Name() + " at " + c.URL()
	}
	return fmt.Sprintf("%d Cubes: %s; each project goes to one", s.Cubes(), strings.Join(parts, ", "))
}

func portEnv(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	// 0 asks for any free port; the banner says which.
	p, err := strconv.Atoi(v)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port number", name, v)
	}
	return p, nil
}

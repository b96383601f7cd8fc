package stack

import (
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"time"

	"productanalytics/internal/motoserver"
	"productanalytics/internal/server"
)

// The faults a test can give the stack's real parts while traffic flows:
// Cube killed, frozen, restarted with a new key; Secrets Manager killed and
// brought back. Each part comes back on the address it had, so that the
// API, built once, finds it again without a restart of its own.

// KillCube ends the (first) Cube at once (SIGKILL), as a crash would, and
// waits until it has exited.
func (s *Stack) KillCube() error { return s.Cube(0).Kill() }

// StartCube starts the (first) Cube again on its port, with the current
// key, and waits until it is ready. It stops the running one first, if any.
func (s *Stack) StartCube(ctx context.Context) error { return s.Cube(0).Start(ctx) }

// FreezeCube stops the (first) Cube's process without ending it (SIGSTOP):
// it still holds its port and connections, and answers nothing, as a hung
// process.
func (s *Stack) FreezeCube() error { return s.Cube(0).Freeze() }

// ThawCube resumes a frozen (first) Cube (SIGCONT).
func (s *Stack) ThawCube() error { return s.Cube(0).Thaw() }

// RotateCubeKey rotates the (first) Cube's API key (see Cube.RotateKey).
func (s *Stack) RotateCubeKey(ctx context.Context, key string) error {
	return s.Cube(0).RotateKey(ctx, key)
}

// KillSecretsManager ends the Secrets Manager emulator at once, as a crash
// or an outage would; the API's caches are left to serve what they hold.
func (s *Stack) KillSecretsManager() error { return s.moto.Kill() }

// StartSecretsManager starts the emulator again on its address, with the
// keys as they are now (moto keeps nothing across a restart).
func (s *Stack) StartSecretsManager(ctx context.Context) error {
	if err := s.moto.Restart(ctx); err != nil {
		return err
	}
	return s.createSecrets(ctx)
}

// API is an API served beside the stack's own (StartAPI).
type API struct {
	// URL is its base address.
	URL string
	srv *http.Server
}

// Close stops it.
func (a *API) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.srv.Shutdown(ctx)
}

// StartAPI serves another API on a free port, built as the stack's own
// (its configuration, Options.Env included, with env over it; the same
// bounded server), logging to log. Tests use it to watch one fault through
// two configurations.
func (s *Stack) StartAPI(ctx context.Context, env map[string]string, log io.Writer) (*API, error) {
	over := maps.Clone(s.opts.Env)
	if over == nil {
		over = map[string]string{}
	}
	maps.Copy(over, env)
	h, _, err := s.buildAPI(ctx, over, log)
	if err != nil {
		return nil, err
	}
	ln, err := listen(s.opts.host(), 0, "another API")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	a := &API{URL: "http://" + net.JoinHostPort(motoserver.ConnectHost(s.opts.host()), port), srv: server.New(h, server.Options{})}
	go a.srv.Serve(ln)
	return a, nil
}

// portOf is the port of a host:port address.
func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

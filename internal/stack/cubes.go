package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"productanalytics/internal/child"
	"productanalytics/shared/config"
	"productanalytics/shared/deploy"
)

// MaxCubes bounds Options.Cubes: each Cube takes a few hundred MB.
const MaxCubes = 8

// cubeProc is one of the stack's Cube processes: one deployment.
type cubeProc struct {
	name   string // the deployment's name
	secret string // the name of its key's secret in the emulator
	port   int

	// The process and key change when a test restarts Cube; the stack's
	// mu guards them.
	proc     *child.Process
	key      string
	restarts int
}

// Cube is one of the stack's Cube processes, for tests to watch and break.
type Cube struct {
	s *Stack
	c *cubeProc
}

// deploymentName is the name of the i-th of n Cubes: one is the
// configuration's single deployment, several are cube-1, cube-2, ...
func deploymentName(i, n int) string {
	if n == 1 {
		return config.DefaultDeployment
	}
	return "cube-" + strconv.Itoa(i+1)
}

// LocalCubeKeyOf is the key of the i-th Cube (0 is the first, whose key is
// LocalCubeKey): each deployment has its own, so that a token of one is
// refused by the others.
func LocalCubeKeyOf(i int) string {
	if i == 0 {
		return LocalCubeKey
	}
	return fmt.Sprintf("local-development-cube-%d-api-key-not-for-production", i+1)
}

// cubeKeySecretOf is the name of the i-th Cube's key secret.
func cubeKeySecretOf(i int) string {
	if i == 0 {
		return CubeKeySecret
	}
	return fmt.Sprintf("%s-%d", CubeKeySecret, i+1)
}

// newCubes lists the n Cubes to start, on consecutive ports from port (0:
// each on a free port of its own).
func newCubes(n, port int) []*cubeProc {
	out := make([]*cubeProc, n)
	for i := range out {
		p := 0
		if port != 0 {
			p = port + i
		}
		out[i] = &cubeProc{name: deploymentName(i, n), secret: cubeKeySecretOf(i), port: p, key: LocalCubeKeyOf(i)}
	}
	return out
}

// startCubes starts every Cube at once (each takes seconds to be ready)
// and records their addresses.
func (s *Stack) startCubes(ctx context.Context) error {
	errs := make([]error, len(s.cubes))
	var wg sync.WaitGroup
	for i, c := range s.cubes {
		wg.Go(func() {
			p, addr, err := startCube(ctx, s.opts, c.port, c.key)
			if err != nil {
				errs[i] = fmt.Errorf("Cube %s: %w", c.name, err)
				return
			}
			s.mu.Lock()
			c.proc, c.port = p, portOf(addr)
			s.mu.Unlock()
			s.CubeURLs[i] = "http://" + addr
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Cubes is how many Cube processes the stack runs.
func (s *Stack) Cubes() int { return len(s.cubes) }

// Cube returns the i-th Cube (from 0).
func (s *Stack) Cube(i int) *Cube { return &Cube{s: s, c: s.cubes[i]} }

// CubeOf returns the Cube the API routes project to.
func (s *Stack) CubeOf(project int64) *Cube {
	return s.Cube(s.router.Index(project))
}

// Deployments are the stack's Cubes as the API's configuration lists them.
func (s *Stack) Deployments() []deploy.Deployment {
	out := make([]deploy.Deployment, len(s.cubes))
	for i, c := range s.cubes {
		out[i] = deploy.Deployment{Name: c.name, URL: s.CubeURLs[i], KeySecretID: c.secret}
	}
	return out
}

// Name is the Cube's deployment name.
func (c *Cube) Name() string { return c.c.name }

// URL is the Cube's base address.
func (c *Cube) URL() string { return c.s.CubeURLs[c.index()] }

// Key is the Cube's current API key.
func (c *Cube) Key() string {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.c.key
}

func (c *Cube) index() int {
	for i, p := range c.s.cubes {
		if p == c.c {
			return i
		}
	}
	panic("a Cube of another stack")
}

func (c *Cube) process() *child.Process {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.c.proc
}

// PID is the process id of the Cube, for measuring it.
func (c *Cube) PID() int { return c.process().Pid() }

// Output is what the Cube's current process has printed: its last
// child.KeptOutput bytes.
func (c *Cube) Output() string { return c.process().Output() }

// Restarts is how many times the supervisor has restarted the Cube.
func (c *Cube) Restarts() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.c.restarts
}

// Kill ends the Cube at once (SIGKILL), as a crash would, and waits until
// it has exited.
func (c *Cube) Kill() error {
	p := c.process()
	p.Thaw() // a frozen process dies of SIGKILL too, but leave it runnable
	return p.Stop(0)
}

// Start starts the Cube again on its port, with its current key, and waits
// until it is ready. It stops the running one first, if any.
func (c *Cube) Start(ctx context.Context) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.restartCubeLocked(ctx, c.c)
}

// Freeze stops the Cube's process without ending it (SIGSTOP): it still
// holds its port and connections, and answers nothing, as a hung process.
func (c *Cube) Freeze() error { return c.process().Freeze() }

// Thaw resumes a frozen Cube (SIGCONT).
func (c *Cube) Thaw() error { return c.process().Thaw() }

// RotateKey rotates the Cube's API key as an operator would: the new value
// becomes its secret's current version, then the Cube is restarted with
// it. The API learns it from Cube's 403, or when its cache expires.
func (c *Cube) RotateKey(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("rotating the Cube key: the new key is empty")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := c.s.moto.Client().PutSecretValue(cctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(c.c.secret), SecretString: aws.String(key)})
	cancel()
	if err != nil {
		return fmt.Errorf("putting the new key into the secret of Cube %s: %w", c.c.name, err)
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.c.key = key
	return c.s.restartCubeLocked(ctx, c.c)
}

func (s *Stack) restartCubeLocked(ctx context.Context, c *cubeProc) error {
	c.proc.Thaw()
	if err := c.proc.Stop(5 * time.Second); err != nil {
		return err
	}
	p, _, err := startCube(ctx, s.opts, c.port, c.key)
	if err != nil {
		return fmt.Errorf("restarting Cube %s on port %d: %w", c.name, c.port, err)
	}
	c.proc = p
	return nil
}

// deploymentsSpec is CUBE_DEPLOYMENTS for the stack's Cubes, reached at
// host (see FunctionEnv).
func (s *Stack) deploymentsSpec(host string) string {
	entries := make([]string, len(s.cubes))
	for i, c := range s.cubes {
		entries[i] = c.name + "=" + onHost(s.CubeURLs[i], host) + "=" + c.secret
	}
	return strings.Join(entries, ",")
}

// lineWriter passes on whole lines only, so that several Cubes writing to
// one log never cut into each other's lines.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, p...)
	end := bytes.LastIndexByte(l.pending, '\n')
	if end < 0 {
		if len(l.pending) < 64<<10 {
			return len(p), nil
		}
		end = len(l.pending) - 1 // a line this long goes out in parts
	}
	_, err := l.w.Write(l.pending[:end+1])
	l.pending = append(l.pending[:0], l.pending[end+1:]...)
	return len(p), err
}

package stack

import (
	"context"
	"log/slog"
	"time"

	"productanalytics/internal/child"
	"productanalytics/internal/logcheck"
)

// The supervisor's pace: a Cube that keeps failing at start is tried again
// at most every maxRestartDelay, and one that ran for stableFor before it
// exited counts as a new failure, restarted after minRestartDelay.
const (
	minRestartDelay = 500 * time.Millisecond
	maxRestartDelay = 30 * time.Second
	stableFor       = time.Minute
)

// superviseCube restarts c, on its port and with its current key, each
// time it exits on its own, as a container's restart policy does in
// production: a crash takes Cube away for about a second, not until someone
// restarts the stack. A Cube the stack itself replaced (StartCube,
// RotateCubeKey) or stopped (Close) is left alone. It returns when stop is
// closed.
func (s *Stack) superviseCube(c *cubeProc, stop <-chan struct{}, log *slog.Logger) {
	delay := minRestartDelay
	log = log.With("deployment", c.name)
	for {
		cube := s.procOf(c)
		watched := time.Now()
		select {
		case <-stop:
			return
		case <-cube.Exited():
		}
		if s.procOf(c) != cube {
			continue // replaced by the stack
		}
		if time.Since(watched) >= stableFor {
			delay = minRestartDelay
		}
		log.Warn("cube exited; restarting it", "pid", cube.Pid(), "exit", cube.ExitStatus(),
			"restart_in_ms", delay.Milliseconds(), "last_output", logcheck.LastLines(cube.Output(), 5))
		select {
		case <-stop:
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRestartDelay)
		pid, err := s.restartExitedCube(c, cube)
		switch {
		case err != nil:
			log.Error("cube restart failed", "error", err.Error(), "next_in_ms", delay.Milliseconds())
		case pid != 0:
			log.Info("cube restarted", "pid", pid, "restarts", s.restartsOf(c))
		}
	}
}

// restartExitedCube starts c again if exited is still its process, and
// returns the new one's pid (0 when the stack had replaced it meanwhile).
func (s *Stack) restartExitedCube(c *cubeProc, exited *child.Process) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || c.proc != exited {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, _, err := startCube(ctx, s.opts, c.port, c.key)
	if err != nil {
		return 0, err
	}
	c.proc = p
	c.restarts++
	return p.Pid(), nil
}

func (s *Stack) procOf(c *cubeProc) *child.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.proc
}

func (s *Stack) restartsOf(c *cubeProc) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.restarts
}

// CubeRestarts is how many times the supervisor has restarted the (first)
// Cube (Options.SuperviseCube).
func (s *Stack) CubeRestarts() int { return s.Cube(0).Restarts() }

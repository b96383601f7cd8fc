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

// superviseCube restarts Cube, on its port and with the current key, each
// time it exits on its own, as a container's restart policy does in
// production: a crash takes Cube away for about a second, not until someone
// restarts the stack. A Cube the stack itself replaced (StartCube,
// RotateCubeKey) or stopped (Close) is left alone. It returns when stop is
// closed.
func (s *Stack) superviseCube(stop <-chan struct{}, log *slog.Logger) {
	delay := minRestartDelay
	for {
		cube := s.cubeProcess()
		watched := time.Now()
		select {
		case <-stop:
			return
		case <-cube.Exited():
		}
		if s.cubeProcess() != cube {
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
		pid, err := s.restartExitedCube(cube)
		switch {
		case err != nil:
			log.Error("cube restart failed", "error", err.Error(), "next_in_ms", delay.Milliseconds())
		case pid != 0:
			log.Info("cube restarted", "pid", pid, "restarts", s.CubeRestarts())
		}
	}
}

// restartExitedCube starts Cube again if exited is still the stack's Cube,
// and returns the new one's pid (0 when the stack had replaced it
// meanwhile).
func (s *Stack) restartExitedCube(exited *child.Process) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.cube != exited {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cube, _, err := startCube(ctx, s.opts, s.cubePort, s.cubeKey)
	if err != nil {
		return 0, err
	}
	s.cube = cube
	s.cubeRestarts++
	return cube.Pid(), nil
}

// CubeRestarts is how many times the supervisor has restarted Cube
// (Options.SuperviseCube).
func (s *Stack) CubeRestarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cubeRestarts
}

package soak

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"productanalytics/internal/child"
	"productanalytics/internal/procstat"
)

// Stack is the stack `make run` starts, run as a process of its own
// (devstack run) so that the memory and descriptors sampled are the API's
// and Cube's alone, not the load generator's.
type Stack struct {
	// URL is the API's address.
	URL string
	// API is the devstack process, which serves the API; Cube is its Cube.
	API, Cube Process
	// CubeLog is the file Cube logs to.
	CubeLog string

	proc *child.Process
}

var banner = regexp.MustCompile(`ready at (http://127\.0\.0\.1:\d+) .*, Cube log in (\S+)\)`)

// StartStack runs devstack (the binary `make run` builds) with dir as the
// project's root, on free ports, with data as the events folder ("" for
// its default, .local/events), and returns once it is ready.
func StartStack(ctx context.Context, devstack, dir, data string) (*Stack, error) {
	args := []string{"run"}
	if data != "" {
		args = append(args, "-data", data)
	}
	cmd := exec.Command(devstack, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT=0", "CUBE_PORT=0")
	p, err := child.Start(cmd, nil)
	if err != nil {
		return nil, err
	}
	s := &Stack{proc: p, API: Process{Name: "API", Pid: p.Pid()}}
	// Installing Cube's modules or generating the data may come first.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	m, err := p.WaitOutput(ctx, banner)
	if err != nil {
		p.Stop(30 * time.Second)
		return nil, fmt.Errorf("devstack run: %w; its output:\n%s", err, p.Output())
	}
	s.URL, s.CubeLog = m[1], m[2]
	kids, err := procstat.Children(p.Pid())
	for _, k := range kids {
		if k.Name == "node" {
			s.Cube = Process{Name: "Cube", Pid: k.Pid}
		}
	}
	if err == nil && s.Cube.Pid == 0 {
		err = fmt.Errorf("no node process among devstack's children %v", kids)
	}
	if err != nil {
		// Without /proc the run goes on, reporting n/a.
		s.Cube = Process{Name: "Cube", Pid: -1}
	}
	return s, nil
}

// Processes are the API's and Cube's, for Options.Processes.
func (s *Stack) Processes() []Process { return []Process{s.API, s.Cube} }

// CubeLogBytes is the size of Cube's log now.
func (s *Stack) CubeLogBytes() int64 {
	fi, err := os.Stat(s.CubeLog)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Output is the end of what the stack printed (its request log).
func (s *Stack) Output() string { return s.proc.Output() }

// Stop ends the stack as Ctrl-C would, and waits for it.
func (s *Stack) Stop() error {
	if err := s.proc.Stop(30 * time.Second); err != nil {
		return fmt.Errorf("stopping devstack (pid %s): %w", strconv.Itoa(s.API.Pid), err)
	}
	return nil
}

// Command testrepeat runs the whole test suite several times, each run with
// a new shuffle seed, and reports which tests failed in which run, so that
// flakiness is measured rather than guessed. `make test-repeat N=10` runs it.
//
// Usage:
//
//	testrepeat [-n 5] [-logs .local/test-repeat] [packages...]
//
// The output of every failed test is kept under -logs, one file per run.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// run is the outcome of one run of the suite.
type run struct {
	seed     int64
	took     time.Duration
	failed   []string // "package TestName" or "package (whole package)"
	exitCode int
}

func main() {
	n := flag.Int("n", 5, "how many times to run the suite")
	logs := flag.String("logs", ".local/test-repeat", "folder for the output of failed tests")
	flag.Parse()
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	if err := os.MkdirAll(*logs, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "testrepeat:", err)
		os.Exit(2)
	}
	var runs []run
	for i := 1; i <= *n; i++ {
		seed := time.Now().UnixNano()
		logPath := filepath.Join(*logs, fmt.Sprintf("run-%d.log", i))
		r, err := once(seed, pkgs, logPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testrepeat:", err)
			os.Exit(2)
		}
		runs = append(runs, r)
		status := "ok"
		if len(r.failed) > 0 || r.exitCode != 0 {
			status = fmt.Sprintf("FAIL (%d failed; output in %s)", len(r.failed), logPath)
		}
		fmt.Printf("run %d/%d, shuffle %d: %s in %s\n", i, *n, seed, status, r.took.Round(time.Second))
		for _, f := range r.failed {
			fmt.Printf("    %s\n", f)
		}
	}
	os.Exit(report(os.Stdout, runs))
}

// once runs the suite one time with seed, and writes the output of each
// failed test to logPath.
func once(seed int64, pkgs []string, logPath string) (run, error) {
	args := append([]string{"test", "-race", "-count=1", fmt.Sprintf("-shuffle=%d", seed), "-json"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return run{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return run{}, err
	}
	r := run{seed: seed}
	// Output is kept per test until the test ends, and only failed tests'
	// output is written, so memory stays bounded by the tests in flight.
	output := map[string]*strings.Builder{}
	var failedOutput strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue // a build error line, already on stderr
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			b := output[key]
			if b == nil {
				b = &strings.Builder{}
				output[key] = b
			}
			b.WriteString(e.Output)
		case "fail":
			name := e.Test
			if name == "" {
				name = "(package)"
			}
			// A subtest's failure fails its parents too: report the leaves.
			if !hasFailedChild(r.failed, e.Package, name) {
				r.failed = append(r.failed, e.Package+" "+name)
			}
			if b := output[key]; b != nil {
				fmt.Fprintf(&failedOutput, "=== %s %s\n%s\n", e.Package, name, b.String())
			}
			delete(output, key)
		case "pass", "skip":
			delete(output, key)
		}
	}
	err = cmd.Wait()
	r.took = time.Since(start)
	if exit, ok := err.(*exec.ExitError); ok {
		r.exitCode = exit.ExitCode()
	} else if err != nil {
		return r, err
	}
	if failedOutput.Len() > 0 {
		if err := os.WriteFile(logPath, []byte(failedOutput.String()), 0o644); err != nil {
			return r, err
		}
	}
	return r, nil
}

// hasFailedChild reports whether a subtest of name in pkg is already listed.
func hasFailedChild(failed []string, pkg, name string) bool {
	for _, f := range failed {
		if strings.HasPrefix(f, pkg+" "+name+"/") || name == "(package)" && strings.HasPrefix(f, pkg+" ") {
			return true
		}
	}
	return false
}

// report prints, for each test that failed at least once, the runs it
// failed in, and returns the exit code: 0 when every run passed.
func report(w io.Writer, runs []run) int {
	byTest := map[string][]int{}
	bad := 0
	for i, r := range runs {
		if len(r.failed) > 0 || r.exitCode != 0 {
			bad++
		}
		for _, f := range r.failed {
			byTest[f] = append(byTest[f], i+1)
		}
	}
	fmt.Fprintf(w, "\n%d of %d runs passed\n", len(runs)-bad, len(runs))
	if bad == 0 {
		return 0
	}
	names := make([]string, 0, len(byTest))
	for name := range byTest {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %s failed in runs %v\n", name, byTest[name])
	}
	return 1
}

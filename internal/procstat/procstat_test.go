//go:build linux

package procstat

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestOfThisProcess(t *testing.T) {
	before, err := Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS < 1<<20 || before.FDs < 3 {
		t.Fatalf("got RSS %d bytes, %d descriptors; want at least 1 MB and stdin, stdout, stderr", before.RSS, before.FDs)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	after, err := Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.FDs != before.FDs+1 {
		t.Errorf("got %d descriptors after opening one more than %d", after.FDs, before.FDs)
	}
	if _, err := Of(1 << 30); err == nil {
		t.Error("a process that does not exist has a Stat")
	}
}

func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	kids, err := Children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := (Proc{Pid: cmd.Process.Pid, Name: "sleep"}); !slices.Contains(kids, want) {
		t.Fatalf("got children %v; want %v among them", kids, want)
	}
}

//go:build !linux

package tenants

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// openFiles lists the files process pid holds open, as lsof reports them.
func openFiles(pid int) ([]string, error) {
	out, err := exec.Command("lsof", "-Fn", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return nil, fmt.Errorf("lsof -p %d: %w", pid, err)
	}
	var files []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, "n"); ok {
			files = append(files, name)
		}
	}
	return files, nil
}

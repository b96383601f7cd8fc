package tenants

import (
	"fmt"
	"os"
	"path/filepath"
)

// openFiles lists the files process pid holds open, from /proc.
func openFiles(pid int) ([]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing the open files of process %d: %w", pid, err)
	}
	var files []string
	for _, e := range entries {
		// A descriptor closed since the listing is not open any more.
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			files = append(files, target)
		}
	}
	return files, nil
}

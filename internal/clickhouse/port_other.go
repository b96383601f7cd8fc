//go:build !linux

package clickhouse

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// listeningPorts returns the TCP ports process pid listens on, as lsof
// (part of macOS and the BSDs) lists them.
func listeningPorts(ctx context.Context, pid int) ([]int, error) {
	out, err := exec.CommandContext(ctx, "lsof", "-nP", "-a", "-p", strconv.Itoa(pid), "-iTCP", "-sTCP:LISTEN", "-Fn").Output()
	if err != nil {
		return nil, fmt.Errorf("lsof: %w", err)
	}
	var ports []int
	for line := range strings.SplitSeq(string(out), "\n") {
		// n127.0.0.1:8123
		addr, ok := strings.CutPrefix(line, "n")
		if i := strings.LastIndexByte(addr, ':'); ok && i >= 0 {
			if port, err := strconv.Atoi(addr[i+1:]); err == nil {
				ports = append(ports, port)
			}
		}
	}
	return ports, nil
}

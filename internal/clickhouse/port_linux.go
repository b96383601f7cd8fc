package clickhouse

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listeningPorts returns the TCP ports process pid listens on, read from
// /proc: its socket inodes among its file descriptors, matched with the
// listening sockets of its network namespace.
func listeningPorts(_ context.Context, pid int) ([]int, error) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(proc, "fd"))
	if err != nil {
		return nil, fmt.Errorf("listing the server's files: %w", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(proc, "fd", fd.Name()))
		if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		found, err := listening(filepath.Join(proc, "net", table), inodes)
		if err != nil {
			return nil, err
		}
		ports = append(ports, found...)
	}
	return ports, nil
}

// listening reads a /proc/<pid>/net/tcp table: the local ports of its
// sockets in state LISTEN (0A) whose inode is one of inodes.
func listening(path string, inodes map[string]bool) ([]int, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil // no IPv6
	}
	if err != nil {
		return nil, fmt.Errorf("reading the server's sockets: %w", err)
	}
	defer f.Close()
	var ports []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if port, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil {
			ports = append(ports, int(port))
		}
	}
	return ports, sc.Err()
}

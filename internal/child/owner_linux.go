package child

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Serves is a WaitReady probe: the process itself, not some other process,
// listens on addr (a 127.0.0.1 TCP address). A port probed free can be
// taken by another process before the child binds it; a dial alone would
// then find the other process's listener.
func (p *Process) Serves(addr string) func(context.Context) bool {
	return func(context.Context) bool {
		inode, err := listenerInode(addr)
		if err != nil || inode == "" {
			return false
		}
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", p.cmd.Process.Pid))
		for _, fd := range fds {
			if link, err := os.Readlink(fd); err == nil && link == "socket:["+inode+"]" {
				return true
			}
		}
		return false
	}
}

// listenerInode finds the inode of the socket listening on addr in
// /proc/net/tcp, "" when none does.
func listenerInode(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	ip := net.ParseIP(host).To4()
	n, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return "", fmt.Errorf("%s is not an IPv4 address and port", addr)
	}
	// The kernel writes the address as little-endian hex, the port as hex.
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], n)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st ... inode is the tenth field.
		if len(fields) > 9 && fields[1] == local && fields[3] == "0A" {
			return fields[9], nil
		}
	}
	return "", sc.Err()
}

package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Package is the Debian package that Install installs.
const Package = "clickhouse-server"

// Install returns clickhouse-server's path, installing Debian's package
// first when it is missing (as root; apt waits for another install's
// lock). It says what it installs on log.
func Install(ctx context.Context, log io.Writer) (string, error) {
	if p, err := find(); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("clickhouse-server is not installed; as root, apt-get install %s", Package)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("clickhouse-server is not installed, and there is no apt-get to install Debian's %s", Package)
	}
	fmt.Fprintf(log, "installing ClickHouse (apt-get install %s, about 10 s)...\n", Package)
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-q", "-y", "-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(string(out), 10))
		}
		return nil
	}
	if err := apt("install", Package); err != nil {
		// The package lists may be missing or stale on a fresh machine.
		if err := apt("update"); err != nil {
			return "", err
		}
		if err := apt("install", Package); err != nil {
			return "", err
		}
	}
	return find()
}

// find looks for the server on PATH and where Debian puts it, which is
// not on every user's PATH.
func find() (string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	const debian = "/usr/sbin/clickhouse-server"
	if fi, err := os.Stat(debian); err == nil && !fi.IsDir() {
		return debian, nil
	}
	return "", errors.New("clickhouse-server is not installed")
}

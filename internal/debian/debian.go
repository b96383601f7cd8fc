// Package debian installs the Debian packages that some tests need and a
// fresh machine lacks (clickhouse-server, chromium).
package debian

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"productanalytics/internal/logcheck"
)

// Install installs Debian's package pkg with apt-get, as root. It refreshes
// the package lists once when the first try fails, since they may be
// missing or stale on a fresh machine, and waits up to 5 minutes for
// another install's lock. It says on log what it installs and how long
// that usually takes (took, as "about 10 s").
func Install(ctx context.Context, pkg, took string, log io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s is not installed; as root, apt-get install %s", pkg, pkg)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%s is not installed, and there is no apt-get to install Debian's package", pkg)
	}
	fmt.Fprintf(log, "installing %s (apt-get install %s, %s)...\n", pkg, pkg, took)
	if err := apt(ctx, "install", pkg); err != nil {
		if err := apt(ctx, "update"); err != nil {
			return err
		}
		return apt(ctx, "install", pkg)
	}
	return nil
}

func apt(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-q", "-y", "-o", "DPkg::Lock::Timeout=300"}, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, logcheck.LastLines(string(out), 10))
	}
	return nil
}

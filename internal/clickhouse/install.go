package clickhouse

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"

	"productanalytics/internal/debian"
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
	if err := debian.Install(ctx, Package, "about 10 s", log); err != nil {
		return "", err
	}
	return find()
}

// find looks for the server on PATH and where Debian puts it, which is
// not on every user's PATH.
func find() (string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	const debianPath = "/usr/sbin/clickhouse-server"
	if fi, err := os.Stat(debianPath); err == nil && !fi.IsDir() {
		return debianPath, nil
	}
	return "", errors.New("clickhouse-server is not installed")
}

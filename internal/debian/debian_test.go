package debian

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Installing a package that is already there runs apt-get for real and
// changes nothing.
func TestInstallInstalled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing Debian packages needs root")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("no apt-get")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var log strings.Builder
	if err := Install(ctx, "coreutils", "a moment", &log); err != nil {
		t.Fatal(err)
	}
	if want := "installing coreutils (apt-get install coreutils, a moment)...\n"; log.String() != want {
		t.Errorf("logged %q; want %q", log.String(), want)
	}
}

package stack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
)

// TestGenerateDataAgain: demo data made by another version of the generator
// or loader is generated again; current data, and projects the folder got
// otherwise, are left alone.
func TestGenerateDataAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := InstallCube(ctx, root, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	dir := t.TempDir()
	file := eventsdb.Path(dir, 3)
	stamp := versionFile(dir)
	generate := func() time.Time {
		t.Helper()
		if err := GenerateData(ctx, root, dir, &log, "-projects", "3:200"); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	first := generate()
	if again := generate(); !again.Equal(first) {
		t.Error("current data was generated again")
	}
	if err := os.WriteFile(stamp, []byte("an older version"), 0o644); err != nil {
		t.Fatal(err)
	}
	regenerated := generate()
	if regenerated.Equal(first) {
		t.Error("data of another version was kept")
	}
	if b, err := os.ReadFile(stamp); err != nil || string(b) == "an older version" {
		t.Errorf("the version recorded is %q (%v), not the current one", b, err)
	}
	if err := os.Remove(stamp); err != nil {
		t.Fatal(err)
	}
	if kept := generate(); !kept.Equal(regenerated) {
		t.Error("projects without a recorded version were generated again")
	}
}

// TestSeedFunnels: the demo funnels are copied into a folder that does not
// exist yet, and a folder that does is left as the user made it.
func TestSeedFunnels(t *testing.T) {
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "funnels")
	def := filepath.Join(dir, "1", "install_with_docker.yml")
	if err := SeedFunnels(root, dir); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, DemoFunnels, "1", "install_with_docker.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(def); err != nil || string(got) != string(want) {
		t.Fatalf("the demo funnel copied as %q (%v), want %q", got, err, want)
	}
	if err := os.WriteFile(def, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SeedFunnels(root, dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(def); string(got) != "edited" {
		t.Errorf("a second seeding wrote %q over the user's edit", got)
	}
}

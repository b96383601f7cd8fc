package motoserver

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func getSecret(t *testing.T, c *secretsmanager.Client, id string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func TestServerRoundTrip(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want a loopback http URL", s.URL)
	}

	arn := s.CreateSecret(t, "round-trip", "v1")
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:"+Region+":") {
		t.Errorf("CreateSecret returned %q, want a Secrets Manager ARN in %s", arn, Region)
	}
	for _, id := range []string{"round-trip", arn} {
		if got, err := getSecret(t, s.Client(), id); err != nil || got != "v1" {
			t.Errorf("GetSecretValue(%s) = %q, %v; want v1", id, got, err)
		}
	}

	if v := s.PutSecretValue(t, arn, "v2"); v == "" {
		t.Error("PutSecretValue returned no version id")
	}
	if got, err := getSecret(t, s.Client(), "round-trip"); err != nil || got != "v2" {
		t.Errorf("after PutSecretValue, GetSecretValue = %q, %v; want v2", got, err)
	}
}

// Packages' tests run in parallel, each with its own server: they must not
// see each other's secrets.
func TestServersAreIsolated(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.URL == b.URL {
		t.Fatalf("both servers listen on %s", a.URL)
	}
	a.CreateSecret(t, "only-in-a", "x")
	_, err := getSecret(t, b.Client(), "only-in-a")
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("GetSecretValue on the other server: err = %v, want ResourceNotFoundException", err)
	}
}

func TestCloseStopsTheServer(t *testing.T) {
	s, err := Launch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !s.Exited() {
		t.Error("the process has not exited after Close")
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(s.URL + "/moto-api/")
	if err == nil {
		resp.Body.Close()
		t.Errorf("%s still answers after Close: %s", s.URL, resp.Status)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLaunchWithoutCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	s, err := Launch(t.Context())
	if err == nil {
		s.Close()
		t.Fatal("Launch succeeded with an empty PATH")
	}
	if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), Command) {
		t.Errorf("err = %v, want exec.ErrNotFound naming %s", err, Command)
	}
}

// TestKillAndRestart checks what the fault tests rely on: a killed emulator
// refuses the SDK's calls, and a restarted one answers on the same address,
// empty.
func TestKillAndRestart(t *testing.T) {
	s := Start(t)
	s.CreateSecret(t, "before", "v1")
	url := s.URL
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if !s.Exited() {
		t.Fatal("Kill returned before the emulator exited")
	}
	if _, err := getSecret(t, s.Client(), "before"); err == nil {
		t.Fatal("a killed emulator answered")
	}
	if err := s.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.URL != url {
		t.Fatalf("restarted at %s; want the same address %s", s.URL, url)
	}
	var nf *types.ResourceNotFoundException
	if _, err := getSecret(t, s.Client(), "before"); !errors.As(err, &nf) {
		t.Fatalf("a restarted emulator: %v; want it empty (ResourceNotFoundException)", err)
	}
	s.CreateSecret(t, "after", "v2")
	if got, err := getSecret(t, s.Client(), "after"); err != nil || got != "v2" {
		t.Fatalf("after a restart: %q, %v; want v2", got, err)
	}
}

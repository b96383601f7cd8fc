// Package motoserver runs moto_server, an emulator of AWS services (Secrets
// Manager, SQS, DynamoDB), as a child process, so that tests and local
// tools exercise the real AWS SDK clients over HTTP instead of fakes.
package motoserver

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"productanalytics/internal/child"
)

// Command is the emulator's executable, looked up on PATH.
const Command = "moto_server"

// StartTimeout bounds how long Launch waits for the emulator to answer.
// moto_server imports a large Python package, which takes a few seconds on
// a loaded machine.
const StartTimeout = 30 * time.Second

// Region is the region of the clients that NewClient returns; moto keeps
// each region's secrets apart, so every client of one server must agree.
const Region = "us-east-1"

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint, e.g. http://127.0.0.1:PORT, for the SDK's
	// BaseEndpoint or AWS_ENDPOINT_URL_SECRETS_MANAGER.
	URL string

	host string // what it listens on
	mu   sync.Mutex
	proc *child.Process // replaced by Restart
}

// runningLine is what moto_server prints once it has bound its port (one
// line per address when it listens on all of them).
var runningLine = regexp.MustCompile(`Running on http://[0-9a-fA-F.:\[\]]+:([0-9]+)`)

// Launch starts moto_server on a free port of 127.0.0.1 and returns once it
// answers HTTP. The caller must Close it.
func Launch(ctx context.Context) (*Server, error) { return LaunchOn(ctx, "127.0.0.1") }

// LaunchOn is Launch listening on host's address instead: 0.0.0.0 for
// every address, so that containers reach it too. URL names host, or
// 127.0.0.1 for every address.
func LaunchOn(ctx context.Context, host string) (*Server, error) {
	s := &Server{host: host}
	if err := s.launch(ctx, 0); err != nil {
		return nil, err
	}
	return s, nil
}

// launch starts the emulator on port (0: a free one, which moto prints, so
// that no other process can take it between a probe and the bind).
func (s *Server) launch(ctx context.Context, port int) error {
	path, err := exec.LookPath(Command)
	if err != nil {
		return fmt.Errorf("%s is not on PATH (it comes with the Python package moto[server]): %w", Command, err)
	}
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	proc, err := child.Start(exec.Command(path, "-H", s.host, "-p", strconv.Itoa(port)), nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()
	m, err := proc.WaitOutput(ctx, runningLine)
	if err == nil {
		s.URL = "http://" + net.JoinHostPort(ConnectHost(s.host), m[1])
		// The dashboard answers only once the whole app, Secrets Manager
		// included, is loaded.
		err = proc.WaitReady(ctx, 50*time.Millisecond, child.HTTPOK(s.URL+"/moto-api/"))
	}
	if err != nil {
		proc.Stop(0)
		return fmt.Errorf("%s: %w; its output:\n%s", Command, err, proc.Output())
	}
	return nil
}

// ConnectHost is the address to reach a server listening on host: host
// itself, or 127.0.0.1 when it listens on every address.
func ConnectHost(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return host
}

// Kill ends the emulator at once, as a crash would, and waits until it has
// exited; its secrets go with it. Restart brings it back.
func (s *Server) Kill() error { return s.process().Stop(0) }

// Restart starts the emulator again on the same port, killing it first if
// it runs. It comes back empty: moto keeps its secrets in memory only.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Kill(); err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		return fmt.Errorf("the emulator's address %s: %w", s.URL, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("the emulator's port %q: %w", port, err)
	}
	return s.launch(ctx, p)
}

func (s *Server) process() *child.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Close kills the emulator and everything it started, and waits until it
// has exited. It is safe to call more than once.
func (s *Server) Close() error { return s.process().Stop(0) }

// Exited reports whether the emulator's process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.process().Exited():
		return true
	default:
		return false
	}
}

// Output is what the emulator has printed so far (its request log).
func (s *Server) Output() string { return s.process().Output() }

// Start launches a Server for the test and kills it when the test ends,
// printing its output if the test failed. A missing moto_server fails the
// test rather than skipping it: CI has it, and a skipped test would pass
// without exercising anything.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Launch(context.Background())
	if err != nil {
		tb.Fatalf("motoserver: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			tb.Logf("%s output:\n%s", Command, s.Output())
		}
	})
	return s
}

// NewClient returns a real Secrets Manager client of endpoint, with the
// dummy credentials that moto accepts, independent of the environment's AWS
// configuration.
func NewClient(endpoint string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials,
	})
}

// Client returns a real Secrets Manager client of s.
func (s *Server) Client() *secretsmanager.Client { return NewClient(s.URL) }

// CreateSecret creates the secret name with a string value and returns its
// ARN.
func (s *Server) CreateSecret(tb testing.TB, name, value string) (arn string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	out, err := s.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		SecretString: aws.String(value),
	})
	if err != nil {
		tb.Fatalf("creating secret %s: %v", name, err)
	}
	return aws.ToString(out.ARN)
}

// PutSecretValue makes value the current version of the secret id (a name
// or an ARN), as a rotation does, and returns the new version's id.
func (s *Server) PutSecretValue(tb testing.TB, id, value string) (versionID string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	out, err := s.Client().PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String(id),
		SecretString: aws.String(value),
	})
	if err != nil {
		tb.Fatalf("putting a new version of secret %s: %v", id, err)
	}
	return aws.ToString(out.VersionId)
}

// credentials are the dummy credentials moto accepts.
var credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "motoserver"}, nil
})

// NewSQS returns a real SQS client of the emulator at endpoint.
func NewSQS(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{Region: Region, BaseEndpoint: aws.String(endpoint), Credentials: credentials})
}

// NewDynamoDB returns a real DynamoDB client of the emulator at endpoint.
func NewDynamoDB(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{Region: Region, BaseEndpoint: aws.String(endpoint), Credentials: credentials})
}

// NewS3 returns a real S3 client of the emulator at endpoint, addressing
// buckets by path, as moto serves them.
func NewS3(endpoint string) *s3.Client {
	return s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(endpoint), Credentials: credentials, UsePathStyle: true})
}

// SQS returns a real SQS client of s.
func (s *Server) SQS() *sqs.Client { return NewSQS(s.URL) }

// S3 returns a real S3 client of s.
func (s *Server) S3() *s3.Client { return NewS3(s.URL) }

// DynamoDB returns a real DynamoDB client of s.
func (s *Server) DynamoDB() *dynamodb.Client { return NewDynamoDB(s.URL) }

// Env is what points an AWS SDK of another process at s: the endpoints of
// the services it emulates, its region and dummy credentials.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.URL,
		"AWS_ENDPOINT_URL_SQS":             s.URL,
		"AWS_ENDPOINT_URL_DYNAMODB":        s.URL,
		"AWS_REGION":                       Region,
		"AWS_ACCESS_KEY_ID":                "test",
		"AWS_SECRET_ACCESS_KEY":            "test",
	}
}

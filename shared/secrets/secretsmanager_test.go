package secrets_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"productanalytics/internal/motoserver"
	"productanalytics/shared/secrets"
)

// countingClient counts the calls that reach Secrets Manager.
type countingClient struct {
	secrets.GetSecretValueAPI
	calls atomic.Int32
}

func (c *countingClient) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.calls.Add(1)
	return c.GetSecretValueAPI.GetSecretValue(ctx, in, opts...)
}

// The real SDK client against moto_server, one server for all subtests.
func TestSecretsManager(t *testing.T) {
	srv := motoserver.Start(t)
	client := srv.Client()

	t.Run("by name and by ARN", func(t *testing.T) {
		t.Parallel()
		arn := srv.CreateSecret(t, "cube-api-key-by-id", "key-by-id")
		for _, id := range []string{"cube-api-key-by-id", arn} {
			c := secrets.NewCache(secrets.SecretsManager(client, id), secrets.Options{})
			if v, err := c.Get(t.Context()); v != "key-by-id" || err != nil {
				t.Errorf("Get of %s = %q, %v; want key-by-id", id, v, err)
			}
		}
	})

	t.Run("many gets make one call", func(t *testing.T) {
		t.Parallel()
		srv.CreateSecret(t, "cube-api-key-counted", "counted")
		counting := &countingClient{GetSecretValueAPI: client}
		c := secrets.NewCache(secrets.SecretsManager(counting, "cube-api-key-counted"), secrets.Options{})
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if v, err := c.Get(t.Context()); v != "counted" || err != nil {
					t.Errorf("concurrent Get = %q, %v", v, err)
				}
			})
		}
		wg.Wait()
		for range 20 {
			if v, err := c.Get(t.Context()); v != "counted" || err != nil {
				t.Errorf("Get = %q, %v", v, err)
			}
		}
		if n := counting.calls.Load(); n != 1 {
			t.Errorf("40 Gets made %d GetSecretValue calls, want 1", n)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		t.Parallel()
		arn := srv.CreateSecret(t, "cube-api-key-rotated", "old-key")
		counting := &countingClient{GetSecretValueAPI: client}
		clock := newFakeClock()
		c := secrets.NewCache(secrets.SecretsManager(counting, arn), secrets.Options{Now: clock.Now})
		old, err := c.Get(t.Context())
		if old != "old-key" || err != nil {
			t.Fatalf("Get = %q, %v; want old-key", old, err)
		}

		srv.PutSecretValue(t, arn, "new-key")
		if v, _ := c.Get(t.Context()); v != "old-key" {
			t.Errorf("within TTL, Get = %q; want the cached old-key", v)
		}
		clock.Advance(2 * time.Second) // past MinRefreshInterval
		if v, err := c.Refresh(t.Context(), old); v != "new-key" || err != nil {
			t.Errorf("Refresh(old) = %q, %v; want new-key", v, err)
		}
		if v, err := c.Get(t.Context()); v != "new-key" || err != nil {
			t.Errorf("Get after Refresh = %q, %v; want new-key", v, err)
		}
		// A second peer that also used the old key.
		if v, err := c.Refresh(t.Context(), old); v != "new-key" || err != nil {
			t.Errorf("second Refresh(old) = %q, %v; want new-key", v, err)
		}
		if n := counting.calls.Load(); n != 2 {
			t.Errorf("%d GetSecretValue calls, want 2 (the first Get and one Refresh)", n)
		}
	})

	t.Run("missing secret", func(t *testing.T) {
		t.Parallel()
		const id = "cube-api-key-that-does-not-exist"
		c := secrets.NewCache(secrets.SecretsManager(client, id), secrets.Options{})
		v, err := c.Get(t.Context())
		if v != "" || !errors.Is(err, secrets.ErrUnavailable) {
			t.Fatalf("Get = %q, %v; want an error wrapping ErrUnavailable", v, err)
		}
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name the secret", err)
		}
		var notFound *types.ResourceNotFoundException
		if !errors.As(err, &notFound) {
			t.Errorf("error %q lost Secrets Manager's ResourceNotFoundException", err)
		}
	})

	t.Run("white space is trimmed", func(t *testing.T) {
		t.Parallel()
		srv.CreateSecret(t, "cube-api-key-padded", " \tpadded-key\n\n")
		c := secrets.NewCache(secrets.SecretsManager(client, "cube-api-key-padded"), secrets.Options{})
		if v, err := c.Get(t.Context()); v != "padded-key" || err != nil {
			t.Errorf("Get = %q, %v; want padded-key", v, err)
		}
	})

	t.Run("a blank secret is an error", func(t *testing.T) {
		t.Parallel()
		srv.CreateSecret(t, "cube-api-key-blank", " \n")
		c := secrets.NewCache(secrets.SecretsManager(client, "cube-api-key-blank"), secrets.Options{})
		if v, err := c.Get(t.Context()); v != "" || !errors.Is(err, secrets.ErrUnavailable) {
			t.Errorf("Get = %q, %v; want an error wrapping ErrUnavailable", v, err)
		}
	})

	t.Run("a binary secret is an error", func(t *testing.T) {
		t.Parallel()
		const name = "cube-api-key-binary"
		if _, err := client.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
			Name: aws.String(name), SecretBinary: []byte{0, 1, 2},
		}); err != nil {
			t.Fatal(err)
		}
		c := secrets.NewCache(secrets.SecretsManager(client, name), secrets.Options{})
		_, err := c.Get(t.Context())
		if !errors.Is(err, secrets.ErrUnavailable) || !strings.Contains(err.Error(), name) {
			t.Errorf("err = %v, want ErrUnavailable naming %s", err, name)
		}
	})
}

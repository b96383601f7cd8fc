package rie_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/internal/rie"
	"productanalytics/internal/wait"
)

// root is the project's root, relative to this package.
const root = "../.."

var (
	buildOnce sync.Once
	bootstrap string
	buildErr  error
)

// metaBootstrap builds functions/meta for this machine once per test binary.
func metaBootstrap(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rie-test-")
		if err != nil {
			buildErr = err
			return
		}
		bootstrap, buildErr = rie.BuildBootstrap(context.Background(), root, "./functions/meta", dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bootstrap
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bootstrap != "" {
		os.RemoveAll(filepath.Dir(bootstrap))
	}
	os.Exit(code)
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An unconfigured function answers every request with 503; getting that
// answer as a payload 2.0 response proves that the real bootstrap ran under
// the emulator, through the runtime API, with exactly the environment given.
func TestUnconfiguredMetaAnswers503(t *testing.T) {
	e := rie.Start(t, rie.Options{Bootstrap: metaBootstrap(t), FunctionName: "MetaFunction"})
	t.Logf("emulator ready %.1f ms after launch", ms(e.Ready))
	event := readEvent(t, "meta-v2.json")

	for i, name := range []string{"cold", "warm", "warm"} {
		inv, err := e.InvokeTimed(context.Background(), event)
		if err != nil {
			t.Fatalf("invoke %d: %v", i, err)
		}
		t.Logf("%s invoke: first byte after %.2f ms, answer complete after %.2f ms", name, ms(inv.FirstByte), ms(inv.Total))
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(inv.Payload, &resp); err != nil {
			t.Fatalf("the answer is not a payload 2.0 response: %v\n%s", err, inv.Payload)
		}
		if resp.StatusCode != 503 {
			t.Errorf("status %d, want 503: %s", resp.StatusCode, inv.Payload)
		}
		if ct := resp.Headers["Content-Type"]; ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		var body struct {
			Message *string `json:"message"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Message == nil || *body.Message == "" {
			t.Errorf(`body %q is not {"message": ...}`, resp.Body)
		}
	}
	// The function logged why it is unconfigured: the variables it lacks.
	// Its log reaches us through the emulator's pipe, in its own time.
	wait.Until(t, "a start-up log line naming the missing CUBE_API_URL", func() bool {
		return strings.Contains(e.Output(), "CUBE_API_URL: is required")
	})
}

// The emulator's runtime API is moved off its fixed 127.0.0.1:9001, so
// emulators run side by side.
func TestEmulatorsRunSideBySide(t *testing.T) {
	bs := metaBootstrap(t)
	event := readEvent(t, "meta-v2.json")
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			e := rie.Start(t, rie.Options{Bootstrap: bs})
			payload, err := e.Invoke(context.Background(), event)
			if err != nil {
				t.Errorf("emulator %d: %v", i, err)
				return
			}
			if !strings.Contains(string(payload), `"statusCode":503`) {
				t.Errorf("emulator %d answered %s", i, payload)
			}
		})
	}
	wg.Wait()
}

// A handler's error comes back as a *FunctionError, not as an answer.
func TestFunctionErrorIsAnError(t *testing.T) {
	e := rie.Start(t, rie.Options{Bootstrap: metaBootstrap(t)})
	_, err := e.Invoke(context.Background(), []byte(`{"not":"an API Gateway event"}`))
	var fe *rie.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want a *rie.FunctionError", err)
	}
	if !strings.Contains(fe.Message, "unsupported event") {
		t.Errorf("message %q", fe.Message)
	}
	// The function survives its error, as in Lambda.
	if _, err := e.Invoke(context.Background(), readEvent(t, "meta-v2.json")); err != nil {
		t.Errorf("invoke after the error: %v", err)
	}
}

// Close stops the bootstrap too, not only the emulator.
func TestCloseStopsTheFunction(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("finds processes through /proc")
	}
	bs := metaBootstrap(t)
	e, err := rie.Launch(context.Background(), rie.Options{Bootstrap: bs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Invoke(context.Background(), readEvent(t, "meta-v2.json")); err != nil {
		e.Close()
		t.Fatal(err)
	}
	if n := running(bs); n != 1 {
		t.Errorf("%d bootstrap processes while the emulator runs, want 1", n)
	}
	start := time.Now()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed in %.1f ms", ms(time.Since(start)))
	if !e.Exited() {
		t.Error("the emulator is still running")
	}
	wait.Until(t, "the bootstrap to end with its emulator", func() bool { return running(bs) == 0 })
}

// running counts the live processes running the executable path.
func running(path string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	n := 0
	for _, p := range procs {
		if exe, err := os.Readlink(p); err == nil && exe == path {
			if stat, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat")); err == nil && !zombie(stat) {
				n++
			}
		}
	}
	return n
}

func zombie(stat []byte) bool {
	// The state follows the parenthesised command name: "pid (comm) S ...".
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestInstallIsIdempotent(t *testing.T) {
	dir, err := rie.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	first, err := rie.Install(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	second, err := rie.Install(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("paths %s and %s", first, second)
	}
	// A reinstall renames a new file into place: another file, another time.
	after, err := os.Stat(second)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("a second Install replaced the installed emulator")
	}
}

func TestLaunchRefusesAMissingBootstrap(t *testing.T) {
	_, err := rie.Launch(context.Background(), rie.Options{Bootstrap: filepath.Join(t.TempDir(), "bootstrap")})
	if err == nil {
		t.Fatal("no error")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/internal/stack"
)

// exportQuery is a table export as GitLab users make them: 50,000 rows of
// five dimensions, about 12 MB of JSON, twice what Lambda may return.
const exportQuery = `{"dimensions":["TrackedEvents.eventId","TrackedEvents.pageUrlpath","TrackedEvents.event","TrackedEvents.pageTitle","TrackedEvents.agentName"],"limit":50000}`

// cubeRows is Cube's own answer's rows for query, with a token for
// project.
func cubeRows(t *testing.T, project int64, query string) json.RawMessage {
	t.Helper()
	status, body := askCube(t, project, cubeToken(t, project), "POST load", query)
	if status != 200 {
		t.Fatalf("Cube: %d %s", status, truncate(string(body), 300))
	}
	return resultRows(t, body)
}

func resultRows(t *testing.T, body []byte) json.RawMessage {
	t.Helper()
	var out struct {
		Results []struct {
			Data json.RawMessage `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Results) != 1 {
		t.Fatalf("not a load answer (%v): %s", err, truncate(string(body), 300))
	}
	return out.Results[0].Data
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// TestExportThroughLambda: the 50,000-row export reaches a caller that
// accepts gzip through the load function's real bootstrap, and equals
// Cube's own answer once decompressed; a caller that does not accept gzip
// is told what to do.
func TestExportThroughLambda(t *testing.T) {
	want := cubeRows(t, 1, exportQuery)
	e := emulate(t, "load")
	for _, accept := range []string{"gzip, deflate, br", ""} {
		t.Run("Accept-Encoding "+accept, func(t *testing.T) {
			ev := events.APIGatewayV2HTTPRequest{
				Version: "2.0", RouteKey: "POST /projects/{id}/product_analytics/request/load",
				RawPath: "/projects/1/product_analytics/request/load",
				Headers: map[string]string{"authorization": "Bearer " + stack.Token(time.Hour, 1), "content-type": "application/json"},
				Body:    `{"query":` + exportQuery + `,"queryType":"multi"}`,
			}
			ev.RequestContext.HTTP.Method = "POST"
			ev.RequestContext.RequestID = fmt.Sprintf("export-%t", accept != "")
			if accept != "" {
				ev.Headers["accept-encoding"] = accept
			}
			raw, _ := json.Marshal(ev)
			out, err := e.Invoke(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > 6<<20 {
				t.Fatalf("the function returned %d bytes, more than Lambda carries", len(out))
			}
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			if accept == "" {
				if resp.StatusCode != 502 || !strings.Contains(resp.Body, "ask for fewer rows") || !strings.Contains(resp.Body, "gzip") {
					t.Fatalf("without gzip: %d %s", resp.StatusCode, truncate(resp.Body, 300))
				}
				return
			}
			if resp.StatusCode != 200 || resp.Headers["Content-Encoding"] != "gzip" || !resp.IsBase64Encoded {
				t.Fatalf("with gzip: %d %v base64 %v: %s", resp.StatusCode, resp.Headers, resp.IsBase64Encoded, truncate(resp.Body, 200))
			}
			gz, err := base64.StdEncoding.DecodeString(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := gunzip(t, gz)
			if got := resultRows(t, body); !bytes.Equal(got, want) {
				t.Fatalf("the rows differ from Cube's own (%d bytes, want %d)", len(got), len(want))
			}
			t.Logf("%d bytes of JSON, %d gzipped, %d in the response event", len(body), len(gz), len(out))
		})
	}
}

// TestCompressionThroughTheLocalServer: large answers go gzipped to whoever
// accepts it, small ones and refusals as they are; include_token and a
// slow query's polling work as before.
func TestCompressionThroughTheLocalServer(t *testing.T) {
	ask := func(t *testing.T, body, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", env.APIURL+"/api/v4/projects/1/product_analytics/request/load", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, 1))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept-Encoding", accept) // set, so that Go's client does not decompress
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	t.Run("large, with include_token", func(t *testing.T) {
		resp, b := ask(t, `{"query":{"dimensions":["TrackedEvents.pageUrlpath"],"limit":1000},"include_token":true}`, "gzip")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		var out struct {
			Token   string            `json:"token"`
			Results []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(gunzip(t, b), &out); err != nil || out.Token == "" || len(out.Results) != 1 {
			t.Fatalf("%v %+v", err, out)
		}
	})
	t.Run("small", func(t *testing.T) {
		resp, b := ask(t, `{"query":{"measures":["TrackedEvents.count"]}}`, "gzip")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || !json.Valid(b) {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, b)
		}
	})
	t.Run("refusal", func(t *testing.T) {
		resp, b := ask(t, `{"query":{"measures":["TrackedEvents.nope"]}}`, "gzip")
		if resp.StatusCode != 400 || resp.Header.Get("Content-Encoding") != "" || !strings.Contains(string(b), "not found") {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, b)
		}
	})
	t.Run("a slow query, polled", func(t *testing.T) {
		q := fmt.Sprintf(`{"measures":["SlowEvents.count"],"dimensions":["SlowEvents.event"],"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["gz-%d"]}]}`, time.Now().UnixNano())
		resp, b := ask(t, `{"query":`+q+`}`, "gzip")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		if resp.Header.Get("Content-Encoding") == "gzip" {
			b = gunzip(t, b)
		}
		if len(resultRows(t, b)) < 3 {
			t.Fatalf("no rows: %s", b)
		}
	})
}

// TestCurlCompressed: curl --compressed, as people fetch exports, reads the
// gzipped answer.
func TestCurlCompressed(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed")
	}
	want := cubeRows(t, 1, exportQuery)
	cmd := exec.Command(curl, "-sS", "--compressed", "-w", "\n%{size_download}", "-X", "POST",
		env.APIURL+"/api/v4/projects/1/product_analytics/request/load",
		"-H", "Authorization: Bearer "+stack.Token(time.Hour, 1), "-H", "Content-Type: application/json",
		"-d", `{"query":`+exportQuery+`}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	i := bytes.LastIndexByte(out, '\n')
	body, downloaded := out[:i], string(out[i+1:])
	if got := resultRows(t, body); !bytes.Equal(got, want) {
		t.Fatal("curl's answer differs from Cube's own")
	}
	t.Logf("curl --compressed: %d bytes of JSON, %s bytes downloaded", len(body), downloaded)
	if fmt.Sprint(len(body)) == downloaded {
		t.Fatal("curl downloaded the answer uncompressed")
	}
}

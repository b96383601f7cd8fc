package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"deflate, gzip;q=0.5", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"*", true},
		{"br, *;q=0.1", true},
		{"gzip;q=0", false},
		{"gzip;q=0, *", false},
		{"*;q=0", false},
		{"identity", false},
		{"deflate, br", false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			if got := acceptsGzip(tt.header); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// bigAnswer is a Cube answer of n rows.
func bigAnswer(n int) string {
	rows := strings.TrimSuffix(strings.Repeat(`{"TrackedEvents.pageUrlpath":"/docs/getting-started/install","TrackedEvents.count":"83"},`, n), ",")
	return `{"queryType":"regularQuery","results":[{"data":[` + rows + `]}],"slowQuery":false}`
}

func TestCompressedAnswers(t *testing.T) {
	big := bigAnswer(20000) // about 1.7 MB
	tests := []struct {
		name           string
		answer         string
		acceptEncoding string
		includeToken   bool
		lambda         bool // with the transport's 6 MB limit on what is sent
		wantGzip       bool
	}{
		{name: "large, gzip accepted", answer: big, acceptEncoding: "gzip, deflate, br", wantGzip: true},
		{name: "large, gzip accepted, through Lambda", answer: big, acceptEncoding: "gzip", lambda: true, wantGzip: true},
		{name: "large, gzip refused", answer: big, acceptEncoding: "gzip;q=0"},
		{name: "large, no Accept-Encoding", answer: big},
		{name: "small, gzip accepted", answer: cubeAnswer, acceptEncoding: "gzip"},
		{name: "with include_token, gzip accepted", answer: big, acceptEncoding: "gzip", includeToken: true, wantGzip: true},
		{name: "with include_token, through Lambda", answer: big, acceptEncoding: "gzip", includeToken: true, lambda: true, wantGzip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) { io.WriteString(w, tt.answer) })
			var opts Options
			if tt.lambda {
				opts.AnswerFits = func(http.Header, []byte) bool { return true }
			}
			h := NewHandler(newTestChecker(), newTestClient(f), slog.New(slog.DiscardHandler), opts)
			body := `{"query":{"measures":["TrackedEvents.count"]},"include_token":` + map[bool]string{true: "true", false: "false"}[tt.includeToken] + `}`
			r := httptest.NewRequest("POST", "/projects/1/product_analytics/request/load", strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+project1Token(t))
			if tt.acceptEncoding != "" {
				r.Header.Set("Accept-Encoding", tt.acceptEncoding)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				t.Fatalf("got %d %s", w.Code, w.Body)
			}
			if got := w.Header().Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary = %q, want Accept-Encoding", got)
			}
			got := w.Body.Bytes()
			if enc := w.Header().Get("Content-Encoding"); (enc == "gzip") != tt.wantGzip {
				t.Fatalf("Content-Encoding = %q, want gzip %v", enc, tt.wantGzip)
			}
			if tt.wantGzip {
				if len(got) > len(tt.answer)/4 {
					t.Errorf("%d bytes gzipped from %d", len(got), len(tt.answer))
				}
				z, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatal(err)
				}
				if got, err = io.ReadAll(z); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.includeToken {
				if string(got) != tt.answer {
					t.Fatalf("the answer changed on its way: %d bytes, want %d", len(got), len(tt.answer))
				}
				return
			}
			var withToken map[string]json.RawMessage
			if err := json.Unmarshal(got, &withToken); err != nil || len(withToken["token"]) < 10 || len(withToken["results"]) < 10 {
				t.Fatalf("include_token answer: %v, keys %d", err, len(withToken))
			}
		})
	}
}

// Through a transport with a limit, the limit applies to what is sent: an
// answer too large as text fits once gzipped, and the refusal says both
// ways out.
func TestCompressionMakesItFit(t *testing.T) {
	big := bigAnswer(20000)
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) { io.WriteString(w, big) })
	limit := func(_ http.Header, body []byte) bool { return len(body) < 1<<20 }
	h := NewHandler(newTestChecker(), newTestClient(f), slog.New(slog.DiscardHandler), Options{AnswerFits: limit})
	for _, accept := range []string{"", "gzip"} {
		r := httptest.NewRequest("POST", "/projects/1/product_analytics/request/load", strings.NewReader(seedTracked))
		r.Header.Set("Authorization", "Bearer "+project1Token(t))
		r.Header.Set("Accept-Encoding", accept)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case accept == "" && (w.Code != 502 || !strings.Contains(w.Body.String(), "Accept-Encoding: gzip") || w.Header().Get("Content-Encoding") != ""):
			t.Errorf("without gzip: %d %s %v", w.Code, w.Body, w.Header())
		case accept == "gzip" && (w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip"):
			t.Errorf("with gzip: %d %v", w.Code, w.Header())
		}
	}
}

// Without a transport limit, a large answer of Cube's streams to the
// caller as it arrives: the same bytes, the token added, gzipped or not.
func TestStreamedAnswers(t *testing.T) {
	big := bigAnswer(5000) // about 430 KB, past cube.StreamAbove
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		// A length, as Cube's express sends it: what lets an answer stream.
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		io.WriteString(w, big)
	})
	h := NewHandler(newTestChecker(), newTestClient(f), slog.New(slog.DiscardHandler), Options{})
	for _, tt := range []struct {
		name         string
		accept       string
		includeToken bool
	}{
		{"identity", "", false},
		{"gzip", "gzip", false},
		{"identity with include_token", "", true},
		{"gzip with include_token", "gzip", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"query":{"measures":["TrackedEvents.count"]},"include_token":` + strconv.FormatBool(tt.includeToken) + `}`
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest("POST", srv.URL+"/projects/1/product_analytics/request/load", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+project1Token(t))
			req.Header.Set("Accept-Encoding", tt.accept)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != tt.accept {
				t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
			}
			if tt.accept == "gzip" {
				z, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatal(err)
				}
				got, _ = io.ReadAll(z)
			} else if !tt.includeToken && resp.ContentLength != int64(len(big)) {
				t.Errorf("Content-Length %d, want Cube's %d", resp.ContentLength, len(big))
			}
			if !tt.includeToken {
				if string(got) != big {
					t.Fatalf("got %d bytes, not Cube's answer of %d", len(got), len(big))
				}
				return
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(got, &m); err != nil || len(m["token"]) < 10 || string(m["queryType"]) != `"regularQuery"` {
				t.Fatalf("not the answer with a token (%v): %.200s", err, got)
			}
			if want := len(big) - 1 + len(`{"token":,`) + len(m["token"]); len(got) != want {
				t.Fatalf("got %d bytes, want %d", len(got), want)
			}
		})
	}
}

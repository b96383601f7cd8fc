package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/badclients"
	"productanalytics/internal/server"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// TestSlowSendersCutOff opens 50 connections to the stack's server that
// send their bodies a byte every 100 ms, half of them without credentials:
// the server must close every one at its read bound (server's default),
// the refused ones answered 401 at once.
func TestSlowSendersCutOff(t *testing.T) {
	addr := strings.TrimPrefix(env.APIURL, "http://")
	var trs []*badclients.Trickler
	for i := range 50 {
		h := "POST /api/v4/projects/1/product_analytics/request/load HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
		if i%2 == 0 {
			h += "Authorization: Bearer " + stack.Token(time.Hour, 1) + "\r\n"
		}
		tr, err := badclients.Trickle(addr, h, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		trs = append(trs, tr)
	}
	opened := time.Now()
	// The bodies would take nearly three hours to arrive.
	wait.Until(t, fmt.Sprintf("the server to close all 50 slow connections (read bound %s)", server.DefaultReadTimeout), func() bool {
		for _, tr := range trs {
			select {
			case <-tr.Closed():
			default:
				return false
			}
		}
		return true
	})
	closed := time.Since(opened)
	got := map[string]int{}
	for i, tr := range trs {
		resp, body := tr.Answer()
		want := map[bool]int{true: 400, false: 401}[i%2 == 0]
		switch {
		case resp == nil:
			t.Errorf("connection %d: closed without an answer", i)
		case resp.StatusCode != want:
			t.Errorf("connection %d: got %d %s; want %d", i, resp.StatusCode, body, want)
		default:
			got[fmt.Sprintf("%d %s", resp.StatusCode, messageOf(body))]++
		}
	}
	t.Logf("FAULT TABLE | 50 connections sending bodies a byte every 100 ms | local server | %v | all closed %s after they opened (read bound %s)",
		got, closed.Round(10*time.Millisecond), server.DefaultReadTimeout)
}

// TestOversizedBodySentWhole posts 2 MB with Python's urllib, which sends
// the whole body before it reads the answer: it must get the 413, not a
// broken pipe.
func TestOversizedBodySentWhole(t *testing.T) {
	body := []byte(`{"query":{"measures":["TrackedEvents.count"]},"pad":"` + strings.Repeat("x", 2<<20) + `"}`)
	header := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + stack.Token(time.Hour, 1)}
	status, answer, err := badclients.PythonPost(t.Context(), env.APIURL+"/api/v4/projects/1/product_analytics/request/load", header, body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "413 Request Entity Too Large"; status != 413 || messageOf([]byte(answer)) != want {
		t.Fatalf("got %d %s; want 413 with GitLab's message %q", status, answer, want)
	}
	t.Logf("FAULT TABLE | 2 MB body sent whole by Python's urllib | local server | 413 %s", answer)
}

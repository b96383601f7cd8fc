// Package badclients are HTTP clients that misbehave as attackers and
// careless scripts do, for the tests of the local server's bounds: a sender
// that trickles its body a byte at a time, and one that sends its whole
// body before reading a byte of the answer (Python's urllib).
package badclients

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Trickler is a connection whose body goes out one byte at a time.
type Trickler struct {
	conn   net.Conn
	closed chan struct{}

	mu     sync.Mutex
	answer *http.Response
	body   []byte
}

// Trickle connects to addr, sends head (a request line and headers, without
// the blank line that ends them) and then a body of '{' bytes, one every
// every, until the server closes the connection or Close is called. It
// reads whatever the server answers meanwhile.
func Trickle(addr, head string, every time.Duration) (*Trickler, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	if _, err := io.WriteString(conn, strings.TrimRight(head, "\r\n")+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sending the headers: %w", err)
	}
	t := &Trickler{conn: conn, closed: make(chan struct{})}
	go t.read()
	go t.send(every)
	return t, nil
}

func (t *Trickler) send(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.closed:
			return
		case <-tick.C:
		}
		if _, err := t.conn.Write([]byte("{")); err != nil {
			return
		}
	}
}

// read takes the answer, if any, and then waits for the server to close.
func (t *Trickler) read() {
	defer close(t.closed)
	br := bufio.NewReader(t.conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return
	}
	body, _ := io.ReadAll(resp.Body)
	t.mu.Lock()
	t.answer, t.body = resp, body
	t.mu.Unlock()
	// Whatever comes after the answer is discarded until the server closes.
	io.Copy(io.Discard, br)
}

// Answer returns the server's answer once it has been read whole; nil
// before.
func (t *Trickler) Answer() (*http.Response, []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.answer, t.body
}

// Closed is closed once the server has closed the connection (or Close was
// called).
func (t *Trickler) Closed() <-chan struct{} { return t.closed }

// Close ends the connection from this side.
func (t *Trickler) Close() { t.conn.Close() }

// pythonPost is a POST with Python's urllib, which sends the whole body
// before it reads the answer. The body comes on stdin; the status and the
// answer's body go to stdout.
const pythonPost = `
import sys, urllib.request, urllib.error
url, headers = sys.argv[1], dict(h.split(": ", 1) for h in sys.argv[2:])
body = sys.stdin.buffer.read()
req = urllib.request.Request(url, data=body, method="POST", headers=headers)
try:
    with urllib.request.urlopen(req, timeout=60) as r:
        status, answer = r.status, r.read()
except urllib.error.HTTPError as e:
    status, answer = e.code, e.read()
sys.stdout.write(str(status) + "\n" + answer.decode())
`

// PythonPost posts body to url with Python's urllib (python3 on PATH) and
// returns the status and body of the answer. A connection the server
// broke before answering is an error, with Python's own words.
func PythonPost(ctx context.Context, url string, header map[string]string, body []byte) (int, string, error) {
	args := []string{"-c", pythonPost, url}
	for k, v := range header {
		args = append(args, k+": "+v)
	}
	cmd := exec.CommandContext(ctx, "python3", args...)
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, "", fmt.Errorf("python3 urllib POST of %d bytes: %w: %s", len(body), err, lastLine(stderr.String()))
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	status, err := strconv.Atoi(first)
	if err != nil {
		return 0, "", errors.New("python3 printed no status: " + string(out))
	}
	return status, rest, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

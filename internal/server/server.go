// Package server builds the HTTP server the API is served with outside
// Lambda: by cmd/server, and by the local stack behind `make run`. API
// Gateway stands in front of the Lambda functions and bounds what reaches
// them; here the server does: how long a request may take to arrive, how
// large it may be, how long a connection may idle. Refusals that need no
// body are answered at once, without waiting for one.
package server

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The defaults of Options, which a zero value takes.
const (
	// DefaultHeaderTimeout bounds the arrival of a request's headers.
	DefaultHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds the arrival of a whole request, headers and
	// body, from its first byte: a sender slower than that is cut off.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds the answer, from the end of the headers;
	// it is well past the Cube client's 25 s wait deadline.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout bounds how long a kept-alive connection waits for
	// its next request.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxHeaderBytes bounds the request line and headers.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxBodyBytes is API Gateway's own limit on a request's body:
	// what is read and discarded, at most, of a body the API refused.
	DefaultMaxBodyBytes = 10 << 20
)

// Options tune the server. Zero values take the defaults above.
type Options struct {
	HeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                        int
	MaxBodyBytes                                          int64
}

// New returns a server of h with the bounds of o. Its Addr is left for the
// caller, which usually calls Serve with a listener of its own.
func New(h http.Handler, o Options) *http.Server {
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return &http.Server{
		Handler:           &bodyBound{next: h, max: o.MaxBodyBytes},
		ReadHeaderTimeout: min(o.HeaderTimeout, o.ReadTimeout),
		// The whole request's deadline; net/http lifts it once the body has
		// been read, so it never ends a handler that is still working.
		ReadTimeout:    o.ReadTimeout,
		WriteTimeout:   o.WriteTimeout,
		IdleTimeout:    o.IdleTimeout,
		MaxHeaderBytes: o.MaxHeaderBytes,
	}
}

// bodyBound answers without waiting for a body the handler did not read.
//
// net/http, before writing an answer, reads what is left of the body (up to
// 256 KB) so as to keep the connection: a 401 then waits for a slow sender's
// whole body. Instead, the answer to a request whose body was not read to
// its end says Connection: close and goes out at once; then the rest of the
// body, up to max and within the read deadline, is read and discarded, so
// that a client that sends its whole body before reading (Python's urllib)
// finds the answer instead of a reset connection.
type bodyBound struct {
	next http.Handler
	max  int64
}

func (b *bodyBound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		b.next.ServeHTTP(w, r)
		return
	}
	rc := http.NewResponseController(w)
	// The body may be read after the answer is written; HTTP/1.1 allows it.
	rc.EnableFullDuplex()
	body := &countedBody{ReadCloser: r.Body}
	cw := &closingWriter{ResponseWriter: w, body: body}
	inner := *r
	inner.Body = body
	b.next.ServeHTTP(cw, &inner)
	if cw.status == 0 {
		cw.WriteHeader(http.StatusOK) // what net/http would send
	}
	cw.release(true)
	if body.eof {
		return
	}
	// Nothing more is read once this returns: net/http would otherwise wait
	// for up to 256 KB more of the body while closing it.
	defer rc.SetReadDeadline(time.Now())
	// A client waiting for "100 Continue" has not sent its body, and will
	// not: the connection closes cleanly. A body larger than the bound
	// would not be read to its end anyway.
	if (body.n == 0 && expectsContinue(r)) || r.ContentLength > b.max {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	io.CopyN(io.Discard, body, b.max-body.n)
}

func expectsContinue(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("Expect")), "100-continue")
}

// countedBody tells how much of a body was read, and whether to its end.
type countedBody struct {
	io.ReadCloser
	n   int64
	eof bool
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// maxHeld bounds the answer held back to learn its length: GitLab's
// {"message": ...} refusals are far smaller.
const maxHeld = 64 << 10

// closingWriter adds Connection: close to an answer written before the body
// was read to its end, and holds such an answer back until the handler
// returns, so that it goes out with its length: sent chunked, its end would
// wait for the body to be drained.
type closingWriter struct {
	http.ResponseWriter
	body   *countedBody
	status int // 0 until the handler writes its header
	held   bool
	buf    bytes.Buffer
}

func (w *closingWriter) WriteHeader(code int) {
	if code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.status != 0 {
		return
	}
	w.status = code
	if w.body.eof {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.Header().Set("Connection", "close")
	w.held = true
}

func (w *closingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.held {
		if w.buf.Len()+len(p) <= maxHeld {
			return w.buf.Write(p)
		}
		w.release(false)
	}
	return w.ResponseWriter.Write(p)
}

// FlushError sends what was held back, and flushes.
func (w *closingWriter) FlushError() error {
	w.release(false)
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// release writes the answer held back, with its length when complete.
func (w *closingWriter) release(complete bool) {
	if !w.held {
		return
	}
	w.held = false
	if complete && w.Header().Get("Content-Length") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(w.buf.Len()))
	}
	w.ResponseWriter.WriteHeader(w.status)
	w.ResponseWriter.Write(w.buf.Bytes())
	w.buf = bytes.Buffer{}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *closingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

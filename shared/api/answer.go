package api

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// compressMin is the smallest answer compressed: below it, gzip's framing
// and the work cost more than they save.
const compressMin = 1024

// gzipLevel is nginx's default: most of the saving for little work. A
// 12 MB answer of 50,000 rows becomes 1.7 MB in about 50 ms; level 6 would
// take it to 1.4 MB in twice the time.
const gzipLevel = gzip.BestSpeed

// answer is a successful answer: Cube's body, after an optional prefix
// (the top of an object with include_token's "token"). A large answer of
// Cube's may come as a stream instead of a body, to be copied as it
// arrives.
type answer struct {
	prefix, body []byte
	stream       io.ReadCloser
	// streamLen is the stream's length, -1 when unknown.
	streamLen int64
}

func (a answer) len() int { return len(a.prefix) + len(a.body) }

func (a answer) writeTo(w io.Writer) (int64, error) {
	n, err := w.Write(a.prefix)
	if err != nil {
		return int64(n), err
	}
	m, err := w.Write(a.body)
	if err != nil || a.stream == nil {
		return int64(n + m), err
	}
	k, err := io.Copy(w, a.stream)
	return int64(n+m) + k, err
}

// close releases a streamed answer's exchange with Cube.
func (a answer) close() {
	if a.stream != nil {
		a.stream.Close()
	}
}

// streamWithToken is withToken for a streamed answer: the token and the
// answer's opening, read from the stream, go in the prefix.
func streamWithToken(stream io.ReadCloser, token string) answer {
	r := bufio.NewReader(stream)
	head, _ := r.Peek(64) // an answer this large has far more
	a := withToken(head, token)
	if a.prefix == nil {
		return answer{stream: readCloser{r, stream}, streamLen: -1}
	}
	r.Discard(len(head) - len(a.body)) // what the prefix stands for
	return answer{prefix: a.prefix, stream: readCloser{r, stream}, streamLen: -1}
}

// readCloser reads through a buffer and closes what is under it.
type readCloser struct {
	io.Reader
	io.Closer
}

// bytes returns the answer in one slice, copying only when it has a prefix.
func (a answer) bytes() []byte {
	if len(a.prefix) == 0 {
		return a.body
	}
	return append(append(make([]byte, 0, a.len()), a.prefix...), a.body...)
}

// withToken adds "token" at the top level of Cube's JSON object answer,
// without copying the answer: the token and the answer's opening go in the
// prefix.
func withToken(body []byte, token string) answer {
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return answer{body: body}
	}
	prefix := make([]byte, 0, len(token)+16)
	prefix = append(prefix, `{"token":`...)
	prefix = strconv.AppendQuote(prefix, token)
	rest := body[i+1:]
	if j := skipSpace(rest, 0); j < len(rest) && rest[j] != '}' {
		prefix = append(prefix, ',')
	}
	return answer{prefix: prefix, body: rest}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip: named
// (or "*") with a quality above zero, and not refused by name.
func acceptsGzip(header string) bool {
	ok := false
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := 1.0
		if k, v, found := strings.Cut(strings.TrimSpace(params), "="); found && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		if coding != "*" {
			return q > 0 // gzip by name decides
		}
		ok = q > 0
	}
	return ok
}

// gzipPool keeps gzip writers, whose state is large, for reuse across
// answers. One is built per Handler.
type gzipPool struct{ pool sync.Pool }

func (p *gzipPool) get(w io.Writer) *gzip.Writer {
	if z, ok := p.pool.Get().(*gzip.Writer); ok {
		z.Reset(w)
		return z
	}
	z, _ := gzip.NewWriterLevel(w, gzipLevel) // the level is valid
	return z
}

func (p *gzipPool) put(z *gzip.Writer) { p.pool.Put(z) }

// compress returns a gzipped into a new buffer sized for JSON's usual
// ratio.
func (p *gzipPool) compress(a answer) []byte {
	buf := bytes.NewBuffer(make([]byte, 0, a.len()/6+64))
	z := p.get(buf)
	a.writeTo(z) // writes to a bytes.Buffer do not fail
	z.Close()
	p.put(z)
	return buf.Bytes()
}

// countingWriter counts what reaches the caller, for the log line.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sendAnswer writes a successful answer, gzipped when the caller accepts
// it and it is large enough, and returns the error to answer instead when
// it cannot be carried. Without a transport limit the answer streams
// through the compressor; with one, it is compressed first, since the
// limit applies to what is carried.
func (h *Handler) sendAnswer(w http.ResponseWriter, r *http.Request, a answer, o *outcome) error {
	hd := w.Header()
	if a.stream != nil {
		// Only without a transport limit, so nothing to check: copy it.
		defer a.close()
		cw := &countingWriter{w: w}
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			hd.Set("Content-Encoding", "gzip")
			o.encoding = "gzip"
			w.WriteHeader(http.StatusOK)
			z := h.gzip.get(cw)
			// A copy cut short leaves the gzip stream unended, so that
			// nothing reads it as whole.
			if _, o.cutShort = a.writeTo(z); o.cutShort == nil {
				z.Close()
			}
			h.gzip.put(z)
		} else {
			if a.streamLen >= 0 {
				hd.Set("Content-Length", strconv.FormatInt(int64(len(a.prefix))+a.streamLen, 10))
			}
			w.WriteHeader(http.StatusOK)
			_, o.cutShort = a.writeTo(cw)
		}
		o.bytes = cw.n
		return nil
	}
	gzipped := a.len() >= compressMin && acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gzipped {
		hd.Set("Content-Encoding", "gzip")
		o.encoding = "gzip"
		if h.opts.AnswerFits == nil {
			w.WriteHeader(http.StatusOK)
			cw := &countingWriter{w: w}
			z := h.gzip.get(cw)
			a.writeTo(z)
			z.Close()
			h.gzip.put(z)
			o.bytes = cw.n
			return nil
		}
		a = answer{body: h.gzip.compress(a)}
	}
	if h.opts.AnswerFits != nil && !h.opts.AnswerFits(hd, a.bytes()) {
		hd.Del("Content-Encoding")
		o.encoding = ""
		return ErrAnswerTooLarge
	}
	hd.Set("Content-Length", strconv.Itoa(a.len()))
	w.WriteHeader(http.StatusOK)
	n, _ := a.writeTo(w)
	o.bytes = n
	return nil
}

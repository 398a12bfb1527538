// The request sent upstream: the body held for replay or streamed once, the URL and Host
// rewritten, hop-by-hop headers removed, X-Forwarded-For and the request ID set.

package httpproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
)

// reqBody is a request's body as the attempts see it: held in memory (replayable) or streamed
// once (too large: only an attempt that never touched it may be retried).
type reqBody struct {
	none    bool
	buf     []byte
	stream  io.Reader
	length  int64
	touched atomic.Bool
}

func (b *reqBody) replayable() bool { return b.stream == nil }

func readBody(r *http.Request, max int64) (*reqBody, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return &reqBody{none: true}, nil
	}
	if r.ContentLength > max {
		return &reqBody{stream: r.Body, length: r.ContentLength}, nil
	}
	// Known length within max, or unknown length: read up to max+1 bytes.
	limit := max + 1
	if r.ContentLength > 0 {
		limit = r.ContentLength
	}
	buf := make([]byte, 0, min(limit, 64<<10))
	w := bytes.NewBuffer(buf)
	n, err := io.Copy(w, io.LimitReader(r.Body, limit))
	if err != nil {
		return nil, err
	}
	if r.ContentLength == -1 && n > max {
		return &reqBody{stream: io.MultiReader(bytes.NewReader(w.Bytes()), r.Body), length: -1}, nil
	}
	return &reqBody{buf: w.Bytes(), length: n}, nil
}

type touchReader struct {
	r io.Reader
	b *reqBody
}

func (t touchReader) Read(p []byte) (int, error) {
	t.b.touched.Store(true)
	return t.r.Read(p)
}

func (t touchReader) Close() error { return nil }

func outRequest(ctx context.Context, r *http.Request, u *upstreamState, body *reqBody, reqID string) *http.Request {
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.Close = false
	out.URL.Scheme = u.URL.Scheme
	out.URL.Host = u.URL.Host
	if p := strings.TrimSuffix(u.URL.Path, "/"); p != "" {
		out.URL.Path = p + r.URL.Path
		if r.URL.RawPath != "" {
			out.URL.RawPath = strings.TrimSuffix(u.URL.EscapedPath(), "/") + r.URL.RawPath
		}
	}
	if u.RewriteHost {
		out.Host = u.URL.Host
	}
	switch {
	case body.none:
		out.Body, out.ContentLength, out.GetBody = nil, 0, nil
		if r.ContentLength == 0 && r.Body != nil && r.Body != http.NoBody {
			out.Body = http.NoBody
		}
	case body.replayable():
		buf := body.buf
		out.Body = io.NopCloser(bytes.NewReader(buf))
		out.ContentLength = int64(len(buf))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	default:
		out.Body = touchReader{r: body.stream, b: body}
		out.ContentLength = body.length
		out.GetBody = nil
	}
	removeHopHeaders(out.Header)
	if httpHeaderHasToken(r.Header, "Te", "trailers") {
		out.Header.Set("Te", "trailers")
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // not Go's default
	}
	out.Header.Set(HeaderRequestID, reqID)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := out.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}
	return out
}

// hopHeaders are removed in both directions (RFC 9110 section 7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for _, sf := range strings.Split(f, ",") {
			if sf = strings.TrimSpace(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

func httpHeaderHasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append(dst[k], vv...)
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

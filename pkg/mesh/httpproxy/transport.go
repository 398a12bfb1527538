package httpproxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/proxy"
)

// NewTransport returns the Transport the proxy uses for direct attempts (dial nil: a plain
// net.Dialer). Keep-alive pools sized for a node's fan-out; no compression (bodies pass
// through untouched); HTTP/2 to https upstreams that offer it.
func NewTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
		DisableCompression:    true,
	}
}

// DialVia returns a dial function that reaches every address through the egress v: SOCKS5
// (the host name is sent to the proxy, resolved there) or HTTP CONNECT. It never dials the
// target directly.
func DialVia(v Via) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	base := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	switch v.Scheme {
	case "socks5":
		d, err := proxy.SOCKS5("tcp", v.Address, nil, base)
		if err != nil {
			return nil, fmt.Errorf("via socks5://%s: %w", v.Address, err)
		}
		cd, ok := d.(proxy.ContextDialer)
		if !ok {
			return nil, fmt.Errorf("via socks5://%s: dialer without context", v.Address)
		}
		return cd.DialContext, nil
	case "http":
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialConnect(ctx, base, v.Address, addr)
		}, nil
	}
	return nil, fmt.Errorf("via %s://%s: unknown scheme", v.Scheme, v.Address)
}

// dialConnect opens a tunnel to target through the HTTP proxy at proxyAddr (RFC 9110
// section 9.3.6).
func dialConnect(ctx context.Context, d *net.Dialer, proxyAddr, target string) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("via http://%s: %w", proxyAddr, err)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		c.Close()
		return nil, fmt.Errorf("via http://%s: CONNECT %s: %w", proxyAddr, target, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("via http://%s: CONNECT %s: %w", proxyAddr, target, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		c.Close()
		return nil, fmt.Errorf("via http://%s: CONNECT %s: %s", proxyAddr, target, resp.Status)
	}
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// viaTransports holds one Transport per egress, shared by a Proxy's Handlers.
type viaTransports struct {
	mu sync.Mutex
	m  map[Via]http.RoundTripper // guarded by mu
}

func newViaTransports() *viaTransports { return &viaTransports{m: map[Via]http.RoundTripper{}} }

func (v *viaTransports) get(via Via) http.RoundTripper {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rt, ok := v.m[via]; ok {
		return rt
	}
	dial, err := DialVia(via)
	var rt http.RoundTripper
	if err != nil {
		rt = errTransport{err}
	} else {
		rt = NewTransport(dial)
	}
	v.m[via] = rt
	return rt
}

// errTransport fails every request before sending it (an egress that cannot be used is never
// bypassed).
type errTransport struct{ err error }

func (e errTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, e.err }

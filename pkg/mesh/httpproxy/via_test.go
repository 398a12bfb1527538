package httpproxy

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/constellation-sh/constellation/internal/nettest"
)

// socks5Server is a minimal RFC 1928 server (no auth, CONNECT only) that counts tunnels.
func socks5Server(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				hdr := make([]byte, 2)
				if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 5 {
					return
				}
				io.ReadFull(c, make([]byte, hdr[1]))
				c.Write([]byte{5, 0})
				req := make([]byte, 4)
				if _, err := io.ReadFull(c, req); err != nil || req[1] != 1 {
					return
				}
				var host string
				switch req[3] {
				case 1:
					b := make([]byte, 4)
					io.ReadFull(c, b)
					host = net.IP(b).String()
				case 3:
					l := make([]byte, 1)
					io.ReadFull(c, l)
					b := make([]byte, l[0])
					io.ReadFull(c, b)
					host = string(b)
				default:
					return
				}
				pb := make([]byte, 2)
				io.ReadFull(c, pb)
				target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb))))
				up, err := net.Dial("tcp", target)
				if err != nil {
					c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
					return
				}
				defer up.Close()
				n.Add(1)
				c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String(), &n
}

// connectServer is an HTTP CONNECT proxy that counts tunnels.
func connectServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		n.Add(1)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go io.Copy(up, brw)
		io.Copy(c, up)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &n
}

func TestVia(t *testing.T) {
	for _, scheme := range []string{"socks5", "http"} {
		t.Run(scheme, func(t *testing.T) {
			addr, tunnels := socks5Server(t)
			if scheme == "http" {
				addr, tunnels = connectServer(t)
			}
			gf := goodUpstream(t)
			u := up(gf.url, gf, 0)
			u.Via = &Via{Scheme: scheme, Address: addr}
			th := newTestHandler(t, HandlerConfig{}, testPolicy(), u)
			for range 3 {
				if from, code := get(t, th); from != gf.url || code != 200 {
					t.Fatalf("%q %d, want %s 200", from, code, gf.url)
				}
			}
			if tunnels.Load() < 1 || gf.count.Load() != 3 {
				t.Errorf("%d tunnels, upstream saw %d requests; want every request through the egress", tunnels.Load(), gf.count.Load())
			}
		})
	}
}

// An egress that refuses the tunnel is a request never sent: the next upstream answers, and
// the upstream behind the egress is never dialled directly.
func TestViaDownFailsClosed(t *testing.T) {
	gf, other := goodUpstream(t), goodUpstream(t)
	dead := nettest.RefusedAddr(t)
	u := up("behind-egress", gf, 0)
	u.Via = &Via{Scheme: "socks5", Address: dead}
	th := newTestHandler(t, HandlerConfig{}, testPolicy(), u, up("other", other, 1))
	if from, code := get(t, th); from != "other" || code != 200 {
		t.Fatalf("%q %d, want other 200", from, code)
	}
	if gf.count.Load() != 0 {
		t.Fatalf("the upstream behind a dead egress got %d direct requests", gf.count.Load())
	}
	// Alone, it is a 502 naming it, still never direct.
	th = newTestHandler(t, HandlerConfig{}, testPolicy(), u)
	if from, code := get(t, th); from != "behind-egress" || code != 502 || gf.count.Load() != 0 {
		t.Fatalf("%q %d (direct requests %d), want behind-egress 502 0", from, code, gf.count.Load())
	}
}

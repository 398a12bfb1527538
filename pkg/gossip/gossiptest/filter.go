package gossiptest

import (
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Filter wraps a memberlist transport (usually a real *memberlist.NetTransport on 127.0.0.1) and
// drops what this node sends to blocked addresses: UDP packets vanish, TCP dials are refused.
// Blocking the same pair on both sides' filters is a clean partition.
type Filter struct {
	memberlist.Transport

	mu sync.Mutex
	// guarded by mu:
	blocked map[string]bool
}

var _ memberlist.Transport = (*Filter)(nil)

// NewFilter wraps inner.
func NewFilter(inner memberlist.Transport) *Filter {
	return &Filter{Transport: inner, blocked: map[string]bool{}}
}

// Block drops traffic to the given host:port addresses.
func (f *Filter) Block(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range addrs {
		f.blocked[a] = true
	}
}

// Unblock restores traffic to every address.
func (f *Filter) Unblock() {
	f.mu.Lock()
	f.blocked = map[string]bool{}
	f.mu.Unlock()
}

func (f *Filter) isBlocked(a string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked[a]
}

// WriteTo implements memberlist.Transport.
func (f *Filter) WriteTo(b []byte, addr string) (time.Time, error) {
	if f.isBlocked(addr) {
		return time.Now(), nil
	}
	return f.Transport.WriteTo(b, addr)
}

// DialTimeout implements memberlist.Transport.
func (f *Filter) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if f.isBlocked(addr) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ErrRefused}
	}
	return f.Transport.DialTimeout(addr, timeout)
}

// NewLoopback binds a real memberlist UDP/TCP transport on 127.0.0.1 at a free port and wraps
// it in a Filter. It returns the filter and the bound address.
func NewLoopback() (*Filter, string, error) { return NewLoopbackAt(0) }

// NewLoopbackAt is NewLoopback on a given port (0: a free one), for a node that restarts where
// it was.
func NewLoopbackAt(port int) (*Filter, string, error) {
	var (
		nt  *memberlist.NetTransport
		err error
	)
	// Port 0 binds TCP first and then UDP on the same number, which can race with other tests;
	// a port just released may take a moment to be free again.
	for range 20 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"},
			BindPort:  port,
			Logger:    log.New(io.Discard, "", 0),
		})
		if err == nil {
			break
		}
		if port != 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err != nil {
		return nil, "", err
	}
	return NewFilter(nt), net.JoinHostPort("127.0.0.1", strconv.Itoa(nt.GetAutoBindPort())), nil
}

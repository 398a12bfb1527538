package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// copyChunk is how often (in bytes) a long copy publishes its byte count. io.CopyN between TCP
// connections still splices in the kernel (no copy through user space); hack/bench-mesh showed
// 64 KiB chunks costing about 1.5x the CPU per GB of one io.Copy, 1 MiB about the same as it.
const copyChunk = 1 << 20

// flow is one proxied TCP connection.
type flow struct {
	mu       sync.Mutex
	client   net.Conn
	upstream net.Conn // nil until connected
	closed   bool
}

func (f *flow) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.client.Close()
	if f.upstream != nil {
		f.upstream.Close()
	}
}

// setUpstream records the connected upstream; false (and up closed) when the flow was closed
// meanwhile.
func (f *flow) setUpstream(up net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		up.Close()
		return false
	}
	f.upstream = up
	return true
}

func (p *Proxy) serveTCP(sp *servicePort, ln net.Listener) {
	defer p.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as net/http does.
			p.log.Warn("mesh accept failed", "listener", sp.key.String(), "service", sp.service, "err", err)
			select {
			case <-time.After(backoff):
			case <-p.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		f := &flow{client: c}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.flows[f] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.handleTCP(sp, f)
	}
}

func (p *Proxy) handleTCP(sp *servicePort, f *flow) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.flows, f)
		p.mu.Unlock()
		f.close()
	}()
	sp.m.connections.Inc()
	up, ep := p.connect(sp)
	if up == nil {
		sp.m.unavailable.Inc()
		// A reset, not a clean end: the client learns at once that nothing answered.
		if tc, ok := f.client.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		return
	}
	defer ep.active.Add(-1)
	if !f.setUpstream(up) {
		return
	}
	sp.m.active.Inc()
	defer sp.m.active.Dec()

	done := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		pipe(f, up, f.client, sp.m.bytesIn)
	}()
	pipe(f, f.client, up, sp.m.bytesOut)
	<-done
}

// connect dials the endpoints in Order until one accepts. The endpoint's connection count is
// taken before dialing (so a burst of new connections spreads) and given back on failure.
func (p *Proxy) connect(sp *servicePort) (net.Conn, *endpointState) {
	for _, ep := range p.order(sp) {
		ep.active.Add(1)
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
		c, err := p.dialer.DialContext(ctx, "tcp", ep.Address)
		cancel()
		if err == nil {
			return c, ep
		}
		ep.active.Add(-1)
		if p.ctx.Err() != nil {
			return nil, nil
		}
		sp.m.connectFailures.Inc()
		p.markFailed(ep)
		p.log.Debug("mesh connect failed, trying the next endpoint", "service", sp.service, "listener", sp.key.String(), "node", ep.Node, "endpoint", ep.Address, "err", err)
	}
	return nil, nil
}

// pipe copies src to dst until src ends, then half-closes dst so the other side sees the end
// too; the opposite direction keeps flowing. Any other error closes the whole flow, which
// unblocks the opposite copy.
func pipe(f *flow, dst, src net.Conn, counter prometheus.Counter) {
	for {
		n, err := io.CopyN(dst, src, copyChunk)
		if n > 0 {
			counter.Add(float64(n))
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
		}
		f.close()
		return
	}
}

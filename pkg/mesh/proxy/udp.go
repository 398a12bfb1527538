package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// udpPort is one UDP listener: a session per client address, each with its own connected
// upstream socket, so replies are told apart by socket and relayed from the listener's address.
type udpPort struct {
	p    *Proxy
	sp   *servicePort
	conn *net.UDPConn

	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession // guarded by mu
	closed   bool                           // guarded by mu
}

type udpSession struct {
	client netip.AddrPort
	up     *net.UDPConn
	ep     *endpointState
	last   atomic.Int64 // unix nanoseconds of the last packet either way
}

func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

func (u *udpPort) serve() {
	defer u.p.wg.Done()
	buf := make([]byte, u.p.cfg.UDPBufferSize)
	for {
		n, client, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.p.log.Debug("mesh udp read failed", "listener", u.sp.key.String(), "err", err)
			continue
		}
		s := u.session(client)
		if s == nil {
			continue
		}
		s.touch()
		if _, err := s.up.Write(buf[:n]); err != nil {
			// A refusal seen by the reply reader may surface here first (the socket's pending
			// ICMP error is reported by whichever call comes next).
			if errors.Is(err, syscall.ECONNREFUSED) {
				u.sp.m.connectFailures.Inc()
				u.p.markFailed(s.ep)
			}
			u.p.log.Debug("mesh udp forward failed", "listener", u.sp.key.String(), "endpoint", s.ep.Address, "err", err)
			u.end(s)
			continue
		}
		u.sp.m.bytesIn.Add(float64(n))
	}
}

// session returns the client's session, starting one when it has none; nil when the packet
// must be dropped.
func (u *udpPort) session(client netip.AddrPort) *udpSession {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	if s, ok := u.sessions[client]; ok {
		return s
	}
	if len(u.sessions) >= u.p.cfg.MaxUDPSessions {
		u.sp.m.dropFull.Inc()
		return nil
	}
	for _, ep := range u.p.order(u.sp) {
		ctx, cancel := context.WithTimeout(u.p.ctx, u.p.cfg.DialTimeout)
		c, err := u.p.dialer.DialContext(ctx, "udp", ep.Address)
		cancel()
		if err != nil {
			u.sp.m.connectFailures.Inc()
			u.p.markFailed(ep)
			continue
		}
		s := &udpSession{client: client, up: c.(*net.UDPConn), ep: ep}
		s.touch() // before relay reads it for its first deadline
		ep.active.Add(1)
		u.sessions[client] = s
		u.sp.m.connections.Inc()
		u.sp.m.active.Inc()
		u.p.wg.Add(1)
		go u.relay(s)
		return s
	}
	u.sp.m.dropNoEndpoint.Inc()
	return nil
}

// relay sends the endpoint's replies to the client until the session is idle for
// UDPIdleTimeout, the endpoint refuses, or the session is ended.
func (u *udpPort) relay(s *udpSession) {
	defer u.p.wg.Done()
	defer u.end(s)
	buf := make([]byte, u.p.cfg.UDPBufferSize)
	idle := u.p.cfg.UDPIdleTimeout
	for {
		s.up.SetReadDeadline(time.Unix(0, s.last.Load()).Add(idle))
		n, err := s.up.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, s.last.Load())) < idle {
				continue // a packet from the client moved the deadline on
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
				// ECONNREFUSED: nothing listens there. The next packet starts a new session.
				u.sp.m.connectFailures.Inc()
				u.p.markFailed(s.ep)
			}
			return
		}
		s.touch()
		if _, err := u.conn.WriteToUDPAddrPort(buf[:n], s.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		u.sp.m.bytesOut.Add(float64(n))
	}
}

// end removes and closes a session (idempotent).
func (u *udpPort) end(s *udpSession) {
	u.mu.Lock()
	if u.sessions[s.client] == s {
		delete(u.sessions, s.client)
		s.ep.active.Add(-1)
		u.sp.m.active.Dec()
	}
	u.mu.Unlock()
	s.up.Close()
}

// dropStale ends the sessions whose endpoint left the set or turned unhealthy: a datagram
// flow has no connection to keep, and its next packet should reach a healthy endpoint.
func (u *udpPort) dropStale(set *endpointSet) {
	ok := map[string]bool{}
	for _, e := range set.eps {
		if e.Healthy {
			ok[e.Address] = true
		}
	}
	u.mu.Lock()
	var stale []*udpSession
	for _, s := range u.sessions {
		if !ok[s.ep.Address] {
			stale = append(stale, s)
		}
	}
	u.mu.Unlock()
	for _, s := range stale {
		u.end(s)
	}
}

func (u *udpPort) close() {
	u.mu.Lock()
	u.closed = true
	all := make([]*udpSession, 0, len(u.sessions))
	for _, s := range u.sessions {
		all = append(all, s)
	}
	u.mu.Unlock()
	u.conn.Close()
	for _, s := range all {
		u.end(s)
	}
}

package raftstore

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
)

// peer is the outgoing side of one member: a queue and the goroutine that drains it.
type peer struct {
	t    *transport
	id   uint64
	from uint64
	q    chan []byte
	stop chan struct{}
	// redial ends the current stream so that the next one dials the new address.
	redial chan struct{}

	mu sync.Mutex
	// guarded by mu:
	addr string
}

// setAddr changes where the peer is dialled; a stream open to the old address is ended.
func (p *peer) setAddr(a string) {
	p.mu.Lock()
	changed := p.addr != a
	p.addr = a
	p.mu.Unlock()
	if changed {
		select {
		case p.redial <- struct{}{}:
		default:
		}
	}
}

func (p *peer) getAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// dial connects and authenticates to the peer. keepalive reports whether the peer agreed to
// keepalives (a stream of this version; never for a snapshot).
func (p *peer) dial(snapshot bool) (c net.Conn, keepalive bool, err error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	ctx, cancel := context.WithCancel(p.t.ctx)
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if p.t.cfg.clientTLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: p.t.cfg.clientTLS}
		c, err = td.DialContext(ctx, "tcp", p.getAddr())
	} else {
		c, err = d.DialContext(ctx, "tcp", p.getAddr())
	}
	if err != nil {
		return nil, false, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	h, _ := json.Marshal(hello{Version: helloVersion, From: p.from, To: p.id, ClusterID: p.t.cfg.clusterID(), Token: p.t.cfg.token, Snapshot: snapshot, Keepalive: !snapshot})
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := writeFrame(c, h); err != nil {
		_ = c.Close()
		return nil, false, err
	}
	var ok [1]byte
	if _, err := io.ReadFull(c, ok[:]); err != nil || (ok[0] != helloOK && ok[0] != helloKeepalive) {
		_ = c.Close()
		if err == nil {
			err = errors.New("peer refused the connection (cluster token, cluster id or node id mismatch)")
		}
		return nil, false, fmt.Errorf("handshake with %x at %s: %w", p.id, p.getAddr(), err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, ok[0] == helloKeepalive, nil
}

func (p *peer) run() {
	defer p.t.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		select {
		case <-p.redial: // this dial reads the current address already
		default:
		}
		c, keepalive, err := p.dial(false)
		if err != nil {
			p.t.cfg.log.Debug("raft peer unreachable", "peer", idString(p.id), "err", err, "dropped", p.discard())
			p.t.node.ReportUnreachable(p.id)
			select {
			case <-p.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		p.t.cfg.log.Debug("raft peer connected", "peer", idString(p.id), "queued", len(p.q))
		err = p.writeLoop(c, keepalive)
		_ = c.Close()
		if err == nil {
			return
		}
		p.t.cfg.log.Debug("raft peer connection lost", "peer", idString(p.id), "err", err)
		p.t.node.ReportUnreachable(p.id)
	}
}

// discard drops what is queued for a peer that cannot be reached, and returns how many: raft
// retransmits what matters once the peer answers again (ReportUnreachable puts it back to
// probing), whereas a queue kept for a dead peer holds up to MaxInflightMsgs appends of up to
// MaxSizePerMsg each in memory, and floods the peer with stale ones when it returns.
func (p *peer) discard() int {
	n := 0
	for {
		select {
		case <-p.q:
			n++
		default:
			if n > 0 {
				p.t.cfg.met.messagesDropped.WithLabelValues("peer_unreachable").Add(float64(n))
			}
			return n
		}
	}
}

// writeLoop sends queued messages in batches: whatever is queued when the writer wakes goes
// out in one flush. With keepalives, an idle stream sends an empty frame every
// keepaliveEvery, and a receiver silent for peerTimeout ends the loop.
func (p *peer) writeLoop(c net.Conn, keepalive bool) error {
	w := bufio.NewWriterSize(c, 256<<10)
	// Detect a dead connection. Without keepalives the receiver never writes after the
	// handshake, so a read returns only when the connection ends; with them it writes a byte
	// every keepaliveEvery, and silence for peerTimeout means it is gone.
	dead := make(chan error, 1)
	go func() {
		var b [64]byte
		for {
			if keepalive {
				_ = c.SetReadDeadline(time.Now().Add(p.t.cfg.peerTimeout))
			}
			if _, err := c.Read(b[:]); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					p.t.cfg.met.peerTimeouts.Inc()
					err = fmt.Errorf("peer silent for %v", p.t.cfg.peerTimeout)
				} else {
					err = fmt.Errorf("connection closed by peer: %w", err)
				}
				dead <- err
				return
			}
		}
	}()
	var idle <-chan time.Time
	if keepalive {
		tick := time.NewTicker(p.t.cfg.keepaliveEvery())
		defer tick.Stop()
		idle = tick.C
	}
	wrote := false // since the last tick
	for {
		var b []byte
		select {
		case <-p.stop:
			return nil
		case err := <-dead:
			return err
		case <-p.redial:
			return errors.New("peer address changed")
		case <-idle:
			if wrote {
				wrote = false
				continue
			}
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := writeFrame(w, nil); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			continue
		case b = <-p.q:
		}
		wrote = true
		// The deadline bounds each frame, not the batch: a batch of large appends to a peer
		// that is busy persisting may take longer than a deadline in all, without anything
		// being wrong with the connection.
		_ = c.SetWriteDeadline(time.Now().Add(frameWriteTimeout))
		if err := writeFrame(w, b); err != nil {
			return err
		}
	drain:
		for i := 0; i < maxBatch; i++ {
			select {
			case b = <-p.q:
				_ = c.SetWriteDeadline(time.Now().Add(frameWriteTimeout))
				if err := writeFrame(w, b); err != nil {
					return err
				}
			default:
				break drain
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

func (p *peer) sendSnapshot(b []byte) {
	defer p.t.wg.Done()
	status := raft.SnapshotFailure
	defer func() { p.t.node.ReportSnapshot(p.id, status) }()
	c, _, err := p.dial(true)
	if err != nil {
		p.t.cfg.log.Warn("snapshot not sent", "peer", idString(p.id), "err", err)
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	w := bufio.NewWriterSize(c, 1<<20)
	if err := writeFrame(w, b); err != nil || w.Flush() != nil {
		p.t.cfg.log.Warn("snapshot not sent", "peer", idString(p.id), "err", err)
		return
	}
	var ok [1]byte
	if _, err := io.ReadFull(c, ok[:]); err != nil || ok[0] != helloOK {
		p.t.cfg.log.Warn("snapshot not acknowledged", "peer", idString(p.id), "err", err)
		return
	}
	status = raft.SnapshotFinish
	p.t.cfg.met.snapshotsSent.Inc()
	p.t.cfg.log.Info("snapshot sent", "peer", idString(p.id), "bytes", len(b))
}

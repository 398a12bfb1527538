package raftstore

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The peer transport: every member dials every other member once and keeps the connection,
// streaming length-prefixed protobuf raft messages over it. A connection opens with a hello
// frame (JSON) carrying the cluster token; the receiver answers one byte. Snapshots travel on
// a connection of their own, so a large one never holds up heartbeats, and the receiver
// acknowledges them so the sender can report the outcome to raft.
//
//	frame := uint32 big-endian length | payload
//
// Keepalives (a sender that asks for them in its hello, answered helloKeepalive): the sender
// writes an empty frame when it has had nothing to send for peerTimeout/4, and the receiver
// writes one byte (helloOK) as often. Each end reads with a deadline of peerTimeout refreshed
// by whatever arrives, so a half-open connection (the peer gone without a reset, a path that
// drops everything) is closed and redialled within peerTimeout, as etcd's rafthttp does with
// its stream read and write timeouts. A peer of an earlier version never asks, or answers
// helloOK, and the connection runs without keepalives, as before.
const (
	maxHelloFrame    = 4 << 10
	maxMessageFrame  = 64 << 20
	maxSnapshotFrame = 1 << 30
	peerQueue        = 4096
	maxBatch         = 512
	helloVersion     = 1
	helloOK          = 1
	helloKeepalive   = 2
	// frameWriteTimeout bounds the write of one frame (and a batch's flush) on a stream.
	frameWriteTimeout = 5 * time.Second
)

type hello struct {
	Version   int    `json:"version"`
	From      uint64 `json:"from"`
	To        uint64 `json:"to"`
	ClusterID string `json:"clusterID,omitempty"`
	Token     string `json:"token"`
	Snapshot  bool   `json:"snapshot,omitempty"`
	// Keepalive asks for keepalives both ways; a receiver that knows them answers helloKeepalive.
	Keepalive bool `json:"keepalive,omitempty"`
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("raftstore: decode hello: %w", err)
	}
	if h.Version != helloVersion {
		return h, fmt.Errorf("raftstore: hello version %d, want %d", h.Version, helloVersion)
	}
	if h.From == 0 {
		return h, errors.New("raftstore: hello from id 0")
	}
	return h, nil
}

// decodeMessage parses a raft message from a peer and refuses what a peer must never send.
func decodeMessage(b []byte, self uint64) (*pb.Message, error) {
	m := &pb.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("raftstore: decode message: %w", err)
	}
	if _, ok := pb.MessageType_name[int32(m.GetType())]; !ok {
		return nil, fmt.Errorf("raftstore: unknown message type %d", m.GetType())
	}
	if raft.IsLocalMsg(m.GetType()) {
		return nil, fmt.Errorf("raftstore: peer sent local message %s", m.GetType())
	}
	if m.GetFrom() == 0 || m.GetTo() != self {
		return nil, fmt.Errorf("raftstore: message from %x to %x, this is %x", m.GetFrom(), m.GetTo(), self)
	}
	if m.GetType() == pb.MsgSnap && raft.IsEmptySnap(m.GetSnapshot()) {
		return nil, errors.New("raftstore: empty snapshot message")
	}
	return m, nil
}

func writeFrame(w io.Writer, b []byte) error {
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(b)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r io.Reader, limit int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if int64(n) > int64(limit) {
		return nil, fmt.Errorf("raftstore: frame of %d bytes exceeds %d", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

type transportConfig struct {
	listen    string
	token     string
	serverTLS *tls.Config
	clientTLS *tls.Config
	clusterID func() string
	log       *slog.Logger
	met       *metrics
	// propTimeout bounds how long a forwarded proposal waits to be stepped.
	propTimeout time.Duration
	// peerTimeout is how long a stream may stay silent before it is closed (Config.PeerTimeout).
	peerTimeout time.Duration
}

// keepaliveEvery is how often an idle end of a stream says it is alive.
func (c *transportConfig) keepaliveEvery() time.Duration { return c.peerTimeout / 4 }

type transport struct {
	cfg   transportConfig
	ln    net.Listener
	id    uint64          // set by start, before any goroutine reads it
	node  raft.Node       // set by start, before any goroutine reads it
	ctx   context.Context // ends when the transport closes
	stop  context.CancelFunc
	wg    sync.WaitGroup
	props chan *pb.Message // forwarded proposals, stepped apart from the streams
	// drop, when set (tests), decides which outgoing messages are lost.
	drop atomic.Pointer[func(*pb.Message) bool]

	mu sync.Mutex
	// guarded by mu:
	peers   map[uint64]*peer
	inbound map[net.Conn]struct{}
	heard   map[uint64]time.Time // member → when a frame (or keepalive) last arrived from it
	started bool                 // peers' goroutines run once the node exists
	closed  bool
}

func newTransport(cfg transportConfig) (*transport, error) {
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return nil, fmt.Errorf("raftstore: listen on %s: %w", cfg.listen, err)
	}
	if cfg.serverTLS != nil {
		ln = tls.NewListener(ln, cfg.serverTLS)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &transport{cfg: cfg, ln: ln, ctx: ctx, stop: stop, props: make(chan *pb.Message, peerQueue), peers: map[uint64]*peer{}, inbound: map[net.Conn]struct{}{}, heard: map[uint64]time.Time{}}, nil
}

func (t *transport) addr() string { return t.ln.Addr().String() }

// start accepts peers' connections; before it, nothing is stepped into the node.
func (t *transport) start(id uint64, node raft.Node) {
	t.mu.Lock()
	t.id, t.node, t.started = id, node, true
	for _, p := range t.peers {
		p.from = id
		t.wg.Add(1)
		go p.run()
	}
	t.mu.Unlock()
	t.wg.Add(2)
	go t.acceptLoop()
	go t.stepProposals()
}

func (t *transport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() == nil {
				t.cfg.log.Warn("raft transport accept", "err", err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.inbound[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer func() {
				t.mu.Lock()
				delete(t.inbound, c)
				t.mu.Unlock()
				_ = c.Close()
			}()
			if err := t.serve(c); err != nil && t.ctx.Err() == nil && !errors.Is(err, io.EOF) {
				t.cfg.log.Debug("raft peer connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// serve authenticates a peer's connection and steps what it sends into the node.
func (t *transport) serve(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReaderSize(c, 64<<10)
	b, err := readFrame(r, maxHelloFrame)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	h, err := decodeHello(b)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(h.Token), []byte(t.cfg.token)) != 1 {
		t.cfg.met.transportRejected.Inc()
		_, _ = c.Write([]byte{0})
		return fmt.Errorf("peer %x: bad cluster token", h.From)
	}
	if cid := t.cfg.clusterID(); h.ClusterID != "" && cid != "" && h.ClusterID != cid {
		t.cfg.met.transportRejected.Inc()
		_, _ = c.Write([]byte{0})
		return fmt.Errorf("peer %x: cluster %s, this is %s", h.From, h.ClusterID, cid)
	}
	if h.To != t.id {
		_, _ = c.Write([]byte{0})
		return fmt.Errorf("peer %x: dialled %x, this is %x", h.From, h.To, t.id)
	}
	keepalive := h.Keepalive && !h.Snapshot
	ack := byte(helloOK)
	if keepalive {
		ack = helloKeepalive
	}
	if _, err := c.Write([]byte{ack}); err != nil {
		return err
	}
	t.cfg.log.Debug("raft peer accepted", "peer", idString(h.From), "snapshot", h.Snapshot, "keepalive", keepalive)
	if h.Snapshot {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
		b, err := readFrame(r, maxSnapshotFrame)
		if err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
		m, err := decodeMessage(b, t.id)
		if err != nil {
			return err
		}
		if err := t.node.Step(t.ctx, m); err != nil {
			return err
		}
		_, err = c.Write([]byte{helloOK})
		return err
	}
	_ = c.SetReadDeadline(time.Time{})
	if keepalive {
		done := make(chan struct{})
		defer close(done)
		go t.sendKeepalives(c, done)
	}
	for {
		if keepalive {
			_ = c.SetReadDeadline(time.Now().Add(t.cfg.peerTimeout))
		}
		b, err := readFrame(r, maxMessageFrame)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.cfg.met.peerTimeouts.Inc()
				return fmt.Errorf("peer %x silent for %v: %w", h.From, t.cfg.peerTimeout, err)
			}
			return err
		}
		t.markHeard(h.From)
		if len(b) == 0 {
			continue // a keepalive
		}
		m, err := decodeMessage(b, t.id)
		if err != nil {
			return err
		}
		if m.GetType() == pb.MsgProp {
			// A forwarded proposal blocks in Step while this node knows no leader: never
			// let it stall the stream (heartbeats behind it would trigger elections).
			select {
			case t.props <- m:
			default:
				t.cfg.met.messagesDropped.WithLabelValues("proposal_backlog").Inc()
			}
			continue
		}
		if err := t.node.Step(t.ctx, m); err != nil {
			return err
		}
	}
}

func (t *transport) markHeard(id uint64) {
	now := time.Now()
	t.mu.Lock()
	t.heard[id] = now
	t.mu.Unlock()
}

// lastHeard returns when a frame last arrived from member id on its stream to this one (zero:
// never since this transport started). With keepalives a live peer is heard at least every
// peerTimeout/4, on every member, leader or not.
func (t *transport) lastHeard(id uint64) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.heard[id]
}

// sendKeepalives writes one byte on an accepted stream every keepaliveEvery until done, so
// that the sender can tell a live receiver from a half-open connection. A write that cannot
// finish within peerTimeout closes the connection (serve's read then fails).
func (t *transport) sendKeepalives(c net.Conn, done <-chan struct{}) {
	tick := time.NewTicker(t.cfg.keepaliveEvery())
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		_ = c.SetWriteDeadline(time.Now().Add(t.cfg.peerTimeout))
		if _, err := c.Write([]byte{helloOK}); err != nil {
			_ = c.Close()
			return
		}
	}
}

// stepProposals steps forwarded proposals, each for at most propTimeout: a proposal that
// cannot be taken by then is dropped (its proposer times out, as when a leader loses it).
func (t *transport) stepProposals() {
	defer t.wg.Done()
	for {
		select {
		case <-t.ctx.Done():
			return
		case m := <-t.props:
			ctx, cancel := context.WithTimeout(t.ctx, t.cfg.propTimeout)
			if err := t.node.Step(ctx, m); err != nil {
				t.cfg.met.messagesDropped.WithLabelValues("proposal_timeout").Inc()
			}
			cancel()
		}
	}
}

func (t *transport) setPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p, ok := t.peers[id]; ok {
		p.setAddr(addr)
		return
	}
	p := &peer{t: t, id: id, from: t.id, addr: addr, q: make(chan []byte, peerQueue), stop: make(chan struct{}), redial: make(chan struct{}, 1)}
	t.peers[id] = p
	if t.started {
		t.wg.Add(1)
		go p.run()
	}
}

func (t *transport) removePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.peers[id]; ok {
		close(p.stop)
		delete(t.peers, id)
	}
}

// send queues m for its peer, without blocking the raft loop: a full queue drops it and
// tells raft the peer is unreachable (raft retransmits).
func (t *transport) send(m *pb.Message) {
	if f := t.drop.Load(); f != nil && (*f)(m) {
		t.cfg.met.messagesDropped.WithLabelValues("filtered").Inc()
		if m.GetType() == pb.MsgSnap {
			t.node.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		}
		return
	}
	t.mu.Lock()
	p := t.peers[m.GetTo()]
	t.mu.Unlock()
	if p == nil {
		t.cfg.met.messagesDropped.WithLabelValues("unknown_peer").Inc()
		if m.GetType() == pb.MsgSnap {
			t.node.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		}
		return
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.cfg.log.Error("marshal raft message", "err", err)
		return
	}
	if m.GetType() == pb.MsgSnap {
		t.wg.Add(1)
		go p.sendSnapshot(b)
		return
	}
	select {
	case p.q <- b:
		t.cfg.met.messagesSent.Inc()
	default:
		t.cfg.met.messagesDropped.WithLabelValues("queue_full").Inc()
		t.node.ReportUnreachable(m.GetTo())
	}
}

func (t *transport) closeListener() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	_ = t.ln.Close()
}

func (t *transport) close() {
	t.closeListener()
	t.stop()
	t.mu.Lock()
	for id, p := range t.peers {
		close(p.stop)
		delete(t.peers, id)
	}
	for c := range t.inbound {
		_ = c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

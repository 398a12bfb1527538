package gossiptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Network is an in-memory network of memberlist transports. Unlike memberlist's MockNetwork it is
// safe for concurrent use, never blocks a sender (a packet to a full, stopped or unreachable
// node is lost, as UDP would lose it), can cut links, and counts packets.
type Network struct {
	mu sync.Mutex
	// guarded by mu:
	byAddr  map[string]*Transport
	cut     map[[2]string]bool // from → to
	port    int
	latency time.Duration
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{byAddr: map[string]*Transport{}, cut: map[[2]string]bool{}, port: 10000}
}

// SetLatency delays every packet and stream by d (0: none).
func (n *Network) SetLatency(d time.Duration) {
	n.mu.Lock()
	n.latency = d
	n.mu.Unlock()
}

// NewTransport returns a transport with a fresh address 127.0.0.1:port.
func (n *Network) NewTransport() *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.port++
	addr := "127.0.0.1:" + strconv.Itoa(n.port)
	t := &Transport{
		net:      n,
		addr:     addr,
		packetCh: make(chan *memberlist.Packet, 4096),
		streamCh: make(chan net.Conn, 64),
	}
	n.byAddr[addr] = t
	return t
}

// Partition cuts every link between the groups of addresses, both ways.
func (n *Network) Partition(a, b []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]string{x, y}] = true
			n.cut[[2]string{y, x}] = true
		}
	}
}

// Heal restores every link.
func (n *Network) Heal() {
	n.mu.Lock()
	n.cut = map[[2]string]bool{}
	n.mu.Unlock()
}

// route returns the destination of a send, or nil when it is lost.
func (n *Network) route(from, to string) (*Transport, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst := n.byAddr[to]
	if dst == nil || dst.down.Load() || n.cut[[2]string{from, to}] {
		return nil, 0
	}
	return dst, n.latency
}

// Transport is one node's endpoint on a Network.
type Transport struct {
	net      *Network
	addr     string
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	down     atomic.Bool

	// PacketsLost counts packets to this node lost because its receive buffer was full.
	PacketsLost atomic.Int64
	// PacketsSent, BytesSent and StreamsOpened count what this node sent.
	PacketsSent   atomic.Int64
	BytesSent     atomic.Int64
	StreamsOpened atomic.Int64
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Addr is the transport's address.
func (t *Transport) Addr() string { return t.addr }

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	host, ps, _ := net.SplitHostPort(t.addr)
	p, _ := strconv.Atoi(ps)
	return net.ParseIP(host), p, nil
}

// WriteTo implements memberlist.Transport.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if t.down.Load() {
		return now, nil
	}
	t.PacketsSent.Add(1)
	t.BytesSent.Add(int64(len(b)))
	dst, lat := t.net.route(t.addr, a.Addr)
	if dst == nil {
		return now, nil
	}
	p := &memberlist.Packet{Buf: bytes.Clone(b), From: addr(t.addr), Timestamp: now}
	deliver := func() {
		p.Timestamp = time.Now()
		select {
		case dst.packetCh <- p:
		default: // receive buffer full: lost
			dst.PacketsLost.Add(1)
		}
	}
	if lat > 0 {
		time.AfterFunc(lat, deliver)
	} else {
		deliver()
	}
	return now, nil
}

// PacketCh implements memberlist.Transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// IngestPacket implements memberlist.NodeAwareTransport.
func (t *Transport) IngestPacket(conn net.Conn, a net.Addr, now time.Time, shouldClose bool) error {
	if shouldClose {
		defer conn.Close()
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, conn); err != nil {
		return fmt.Errorf("gossiptest: read packet: %w", err)
	}
	if buf.Len() < 1 {
		return errors.New("gossiptest: empty packet")
	}
	select {
	case t.packetCh <- &memberlist.Packet{Buf: buf.Bytes(), From: a, Timestamp: now}:
	default:
	}
	return nil
}

// DialTimeout implements memberlist.Transport.
func (t *Transport) DialTimeout(a string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: a}, timeout)
}

// ErrRefused is returned by a dial to a stopped or unreachable node.
var ErrRefused = errors.New("gossiptest: connection refused")

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.down.Load() {
		return nil, ErrRefused
	}
	dst, lat := t.net.route(t.addr, a.Addr)
	if dst == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ErrRefused}
	}
	if lat > 0 {
		time.Sleep(lat)
	}
	t.StreamsOpened.Add(1)
	p1, p2 := net.Pipe()
	select {
	case dst.streamCh <- p1:
		return p2, nil
	case <-time.After(timeout):
		p1.Close()
		p2.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("gossiptest: timeout")}
	}
}

// StreamCh implements memberlist.Transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// IngestStream implements memberlist.NodeAwareTransport.
func (t *Transport) IngestStream(conn net.Conn) error {
	t.streamCh <- conn
	return nil
}

// Shutdown implements memberlist.Transport: the node stops sending and receiving, as a killed
// process would.
func (t *Transport) Shutdown() error {
	t.down.Store(true)
	return nil
}

type addr string

func (a addr) Network() string { return "mem" }
func (a addr) String() string  { return string(a) }

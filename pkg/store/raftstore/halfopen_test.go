package raftstore

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

// blackHoleProxy forwards TCP connections to a target until it is switched to black-hole mode:
// then it keeps every connection open and silently discards what either side sends, as a path
// that drops packets without a reset does (no FIN, no RST: a half-open connection).
type blackHoleProxy struct {
	ln     net.Listener
	target string

	mu sync.Mutex
	// guarded by mu:
	hole     bool
	accepted int
	conns    []net.Conn
}

func newBlackHoleProxy(t *testing.T, target string) *blackHoleProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackHoleProxy{ln: ln, target: target}
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	go p.accept()
	return p
}

func (p *blackHoleProxy) addr() string { return p.ln.Addr().String() }

func (p *blackHoleProxy) setHole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hole = on
	if !on {
		// The path heals: what the ends gave up on is gone; new connections go through.
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
	}
}

func (p *blackHoleProxy) isHole() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hole
}

func (p *blackHoleProxy) acceptedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *blackHoleProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		p.conns = append(p.conns, in)
		p.mu.Unlock()
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, out)
		p.mu.Unlock()
		go p.pipe(out, in)
		go p.pipe(in, out)
	}
}

// pipe copies src to dst, discarding instead while the proxy is a black hole.
func (p *blackHoleProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.isHole() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			return
		}
	}
}

// A leader's stream to a follower through a path that turns into a black hole is noticed
// within the peer timeout and redialled; once the path heals, the follower catches up.
func TestHalfOpenPeerConnection(t *testing.T) {
	const peerTimeout = time.Second
	c := newCluster(t, 3, func(cfg *Config) { cfg.PeerTimeout = peerTimeout })
	lead := c.leader()
	f := (lead + 1) % 3
	ls, fs := c.store(lead), c.store(f)
	// Both directions between the leader and f go through proxies.
	toF, toLead := newBlackHoleProxy(t, c.nodes[f].addr), newBlackHoleProxy(t, c.nodes[lead].addr)
	ls.tr.setPeer(fs.ID(), toF.addr())
	fs.tr.setPeer(ls.ID(), toLead.addr())
	waitFor(t, 10*time.Second, "streams through the proxies", func() bool { return toF.acceptedCount() > 0 && toLead.acceptedCount() > 0 })
	if _, err := ls.Create(tctx(t, 10*time.Second), storetest.Service("before", nil)); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()

	before := toF.acceptedCount()
	toF.setHole(true)
	toLead.setHole(true)
	holed := time.Now()
	waitFor(t, 10*peerTimeout, "the leader to redial f after the path went silent", func() bool { return toF.acceptedCount() > before })
	t.Logf("leader redialled %v after the path went silent (peer timeout %v)", time.Since(holed).Round(10*time.Millisecond), peerTimeout)
	if got := counterValue(ls.met.peerTimeouts); got < 1 {
		t.Fatalf("leader counted %v peer stream timeouts, want at least 1", got)
	}
	// Writes go on with the third member while f is cut off.
	if _, err := ls.Create(tctx(t, 10*time.Second), storetest.Service("during", nil)); err != nil {
		t.Fatal(err)
	}
	toF.setHole(false)
	toLead.setHole(false)
	c.waitConverged()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Rolling upgrades: a member of an earlier version neither asks for keepalives nor sends them.
// A stream from this version to such a receiver runs without them (no empty frame it would
// choke on, no timeout on its silence), and a stream from such a sender is not timed out.
func TestKeepalivesNegotiated(t *testing.T) {
	const peerTimeout = 400 * time.Millisecond
	c := newCluster(t, 1, func(cfg *Config) { cfg.PeerTimeout = peerTimeout })
	s := c.store(0)

	// An old receiver: reads the hello, answers helloOK, then only reads frames.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type seen struct {
		conns, empty int
		asked        bool
	}
	got := make(chan seen, 1)
	go func() {
		var st seen
		defer func() { got <- st }()
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * peerTimeout))
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		st.conns++
		b, err := readFrame(conn, maxHelloFrame)
		if err != nil {
			return
		}
		h, _ := decodeHello(b)
		st.asked = h.Keepalive
		_, _ = conn.Write([]byte{helloOK})
		_ = conn.SetReadDeadline(time.Now().Add(4 * peerTimeout))
		for {
			b, err := readFrame(conn, maxMessageFrame)
			if err != nil {
				break
			}
			if len(b) == 0 {
				st.empty++
			}
		}
		// A second connection within the window would mean the sender gave up on a silent
		// old receiver.
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(2 * peerTimeout))
		if again, err := ln.Accept(); err == nil {
			st.conns++
			again.Close()
		}
	}()
	s.tr.setPeer(0xdead, ln.Addr().String())
	r := <-got
	if !r.asked || r.conns != 1 || r.empty != 0 {
		t.Fatalf("to an old receiver: asked for keepalives %v, %d connections, %d empty frames; want asked, 1 connection, no empty frame", r.asked, r.conns, r.empty)
	}

	// An old sender: its hello asks for nothing; it then stays silent longer than the timeout.
	conn, err := net.Dial("tcp", c.nodes[0].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, _ := json.Marshal(hello{Version: helloVersion, From: 0xbeef, To: s.ID(), ClusterID: s.ClusterID(), Token: "test-token"})
	if err := writeFrame(conn, h); err != nil {
		t.Fatal(err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != helloOK {
		t.Fatalf("ack %v, err %v; want helloOK", ack[0], err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * peerTimeout))
	if n, err := conn.Read(ack[:]); n != 0 || !isTimeout(err) {
		t.Fatalf("old sender's silent stream: read %d bytes, err %v; want it left open and silent", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

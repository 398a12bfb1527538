package dns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeUpstream is a real DNS server on loopback (UDP and TCP on one port) that answers
// example.com A 192.0.2.1, web A 198.51.100.7 (a "real" host named like a Service), big.example
// with more TXT than fits in 512 bytes, and NXDOMAIN otherwise. It records the networks it was
// asked over.
type fakeUpstream struct {
	addr string

	mu sync.Mutex
	// guarded by mu:
	nets []string
	ids  []uint16
}

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	tl, pc, bound, err := bindPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = bound.String()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		f.mu.Lock()
		f.nets = append(f.nets, w.LocalAddr().Network())
		f.ids = append(f.ids, req.Id)
		f.mu.Unlock()
		r := new(mdns.Msg)
		r.SetReply(req)
		q := req.Question[0]
		switch strings.ToLower(q.Name) {
		case "example.com.":
			r.Answer = append(r.Answer, mustRR(t, q.Name+" 300 IN A 192.0.2.1"))
		case "web.":
			r.Answer = append(r.Answer, mustRR(t, q.Name+" 300 IN A 198.51.100.7"))
		case "big.example.":
			for i := range 40 {
				r.Answer = append(r.Answer, mustRR(t, q.Name+` 300 IN TXT "record number `+strings.Repeat("x", 20)+string(rune('a'+i%26))+`"`))
			}
		default:
			r.Rcode = mdns.RcodeNameError
		}
		if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
			r.Truncate(clientUDPSize(req))
		}
		_ = w.WriteMsg(r)
	})
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: tl, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return f
}

func (f *fakeUpstream) networks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nets)
}

func mustRR(t *testing.T, s string) mdns.RR {
	rr, err := mdns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// deadUDP returns a loopback address where nothing listens (queries fail at once with
// ECONNREFUSED) and one that swallows queries (they time out).
func deadUpstreams(t *testing.T) (refused, blackhole string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused = pc.LocalAddr().String()
	_ = pc.Close()
	bh, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bh.Close() })
	return refused, bh.LocalAddr().String()
}

type testServer struct {
	*Server
	addr string
	reg  *prometheus.Registry
}

func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.SetTable(testTable())
	bound, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &testServer{Server: s, addr: bound.String(), reg: reg}
}

func (ts *testServer) query(t *testing.T, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, ts.addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	if r.Id != m.Id {
		t.Fatalf("query %s: answer id %d, query id %d", name, r.Id, m.Id)
	}
	return r
}

func (ts *testServer) count(result string) float64 {
	return testutil.ToFloat64(ts.m.queries.WithLabelValues(result))
}

func wantA(t *testing.T, r *mdns.Msg, name, ip string) {
	t.Helper()
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("%s: rcode %s, answers %v; want one A %s", name, mdns.RcodeToString[r.Rcode], r.Answer, ip)
	}
	a, ok := r.Answer[0].(*mdns.A)
	if !ok || a.A.String() != ip || a.Hdr.Name != name {
		t.Fatalf("%s: answer %v, want %s A %s", name, r.Answer[0], name, ip)
	}
}

func wantSOA(t *testing.T, r *mdns.Msg) {
	t.Helper()
	if len(r.Ns) != 1 {
		t.Fatalf("authority %v, want the mesh SOA", r.Ns)
	}
	soa, ok := r.Ns[0].(*mdns.SOA)
	if !ok || soa.Hdr.Name != Domain+"." || soa.Minttl != 5 || soa.Hdr.Ttl != 5 {
		t.Fatalf("authority %v, want the SOA of %s with minimum 5", r.Ns[0], Domain)
	}
}

func TestServerMeshAnswers(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, Config{Upstreams: []string{up.addr}})

	for _, name := range []string{"web.constellation.internal.", "web.", "WeB.CONSTELLATION.internal."} {
		r := ts.query(t, "udp", name, mdns.TypeA)
		wantA(t, r, name, "10.213.0.1") // the mesh wins over the upstream's "web"
		if !r.Authoritative || r.Answer[0].Header().Ttl != 5 {
			t.Errorf("%s: aa=%v ttl=%d, want an authoritative answer with TTL 5", name, r.Authoritative, r.Answer[0].Header().Ttl)
		}
	}
	wantA(t, ts.query(t, "udp", "web-1.web.", mdns.TypeA), "web-1.web.", "10.213.0.3")
	wantA(t, ts.query(t, "udp", "web-0.web.constellation.internal.", mdns.TypeA), "web-0.web.constellation.internal.", "10.213.0.2")
	wantA(t, ts.query(t, "udp", "rs0-primary.constellation.internal.", mdns.TypeA), "rs0-primary.constellation.internal.", "10.213.0.11")

	// AAAA (and any other type) of a mesh name: NOERROR, no answer, SOA for negative caching.
	for _, qt := range []uint16{mdns.TypeAAAA, mdns.TypeMX, mdns.TypeTXT} {
		r := ts.query(t, "udp", "web.constellation.internal.", qt)
		if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 {
			t.Fatalf("%s: rcode %s answers %v, want NOERROR and no answer", mdns.TypeToString[qt], mdns.RcodeToString[r.Rcode], r.Answer)
		}
		wantSOA(t, r)
	}

	// Unknown mesh names: NXDOMAIN with the SOA.
	for _, name := range []string{"nope.constellation.internal.", "web-9.web.", "web-9.web.constellation.internal."} {
		r := ts.query(t, "udp", name, mdns.TypeA)
		if r.Rcode != mdns.RcodeNameError || len(r.Answer) != 0 {
			t.Fatalf("%s: rcode %s answers %v, want NXDOMAIN", name, mdns.RcodeToString[r.Rcode], r.Answer)
		}
		wantSOA(t, r)
	}

	// The apex answers SOA.
	r := ts.query(t, "udp", "constellation.internal.", mdns.TypeSOA)
	if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != mdns.TypeSOA {
		t.Fatalf("apex SOA: %v", r.Answer)
	}

	if len(up.networks()) != 0 {
		t.Errorf("mesh names reached the upstream: %v", up.networks())
	}
	if got := ts.count("answer"); got != 7 {
		t.Errorf("answer count %v, want 7", got)
	}
	if got := ts.count("nxdomain"); got != 3 {
		t.Errorf("nxdomain count %v, want 3", got)
	}
	if got := ts.count("nodata"); got != 3 {
		t.Errorf("nodata count %v, want 3", got)
	}
}

func TestServerEDNS(t *testing.T) {
	ts := startServer(t, Config{Upstreams: []string{"127.0.0.1:1"}})
	m := new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	m.SetEdns0(4096, false)
	r, _, err := (&mdns.Client{}).Exchange(m, ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	wantA(t, r, "web.", "10.213.0.1")
	if opt := r.IsEdns0(); opt == nil || opt.UDPSize() != udpSize {
		t.Fatalf("answer OPT %v, want EDNS0 with size %d", opt, udpSize)
	}
}

func TestServerForwards(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, Config{Upstreams: []string{up.addr}})

	r := ts.query(t, "udp", "example.com.", mdns.TypeA)
	wantA(t, r, "example.com.", "192.0.2.1")
	r = ts.query(t, "udp", "nope.example.", mdns.TypeA)
	if r.Rcode != mdns.RcodeNameError {
		t.Fatalf("upstream NXDOMAIN relayed as %s", mdns.RcodeToString[r.Rcode])
	}
	if got := ts.count("forwarded"); got != 2 {
		t.Errorf("forwarded count %v, want 2", got)
	}
	if got := testutil.CollectAndCount(ts.reg, "constellation_mesh_dns_forward_duration_seconds"); got != 1 {
		t.Errorf("forward histogram series %d, want 1", got)
	}
	if got := histCount(t, ts.reg); got != 2 {
		t.Errorf("forward histogram count %d, want 2", got)
	}
	if got := up.networks(); !slices.Equal(got, []string{"udp", "udp"}) {
		t.Errorf("upstream asked over %v, want udp twice", got)
	}
}

// waitFor polls cond until it holds (at most 5 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func histCount(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "constellation_mesh_dns_forward_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no forward histogram")
	return 0
}

func TestServerTCP(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, Config{Upstreams: []string{up.addr}})
	wantA(t, ts.query(t, "tcp", "web.constellation.internal.", mdns.TypeA), "web.constellation.internal.", "10.213.0.1")
	wantA(t, ts.query(t, "tcp", "example.com.", mdns.TypeA), "example.com.", "192.0.2.1")
	if got := up.networks(); !slices.Equal(got, []string{"tcp"}) {
		t.Errorf("upstream asked over %v, want tcp (the client asked over tcp)", got)
	}
}

func TestServerTruncation(t *testing.T) {
	up := startUpstream(t)
	ts := startServer(t, Config{Upstreams: []string{up.addr}})

	r := ts.query(t, "udp", "big.example.", mdns.TypeTXT)
	if !r.Truncated {
		t.Fatalf("big answer over udp: TC not set (%d answers)", len(r.Answer))
	}
	r.Compress = true // as sent
	if n, _ := r.Pack(); len(n) > mdns.MinMsgSize {
		t.Fatalf("udp answer %d bytes, over 512", len(n))
	}
	r = ts.query(t, "tcp", "big.example.", mdns.TypeTXT)
	if r.Truncated || len(r.Answer) != 40 {
		t.Fatalf("big answer over tcp: tc=%v answers=%d, want all 40", r.Truncated, len(r.Answer))
	}
	if got := up.networks(); !slices.Equal(got, []string{"udp", "tcp"}) {
		t.Errorf("upstream asked over %v, want udp then tcp", got)
	}
}

func TestServerUpstreamFailover(t *testing.T) {
	up := startUpstream(t)
	refused, blackhole := deadUpstreams(t)

	t.Run("first down, second answers", func(t *testing.T) {
		// The timeout must be long enough for the live upstream to answer on a loaded machine.
		ts := startServer(t, Config{Upstreams: []string{blackhole, refused, up.addr}, ForwardTimeout: time.Second})
		wantA(t, ts.query(t, "udp", "example.com.", mdns.TypeA), "example.com.", "192.0.2.1")
		if got := testutil.ToFloat64(ts.m.upstreamErrors.WithLabelValues("timeout")); got != 1 {
			t.Errorf("timeouts %v, want 1 (the blackhole)", got)
		}
		if got := testutil.ToFloat64(ts.m.upstreamErrors.WithLabelValues("error")); got != 1 {
			t.Errorf("errors %v, want 1 (the refused port)", got)
		}
	})
	t.Run("all down", func(t *testing.T) {
		ts := startServer(t, Config{Upstreams: []string{refused, blackhole}, ForwardTimeout: 200 * time.Millisecond})
		r := ts.query(t, "udp", "example.com.", mdns.TypeA)
		if r.Rcode != mdns.RcodeServerFailure {
			t.Fatalf("rcode %s, want SERVFAIL", mdns.RcodeToString[r.Rcode])
		}
		if got := ts.count("servfail"); got != 1 {
			t.Errorf("servfail count %v, want 1", got)
		}
		// Mesh names still answer with every upstream down.
		wantA(t, ts.query(t, "udp", "web.", mdns.TypeA), "web.", "10.213.0.1")
	})
	t.Run("upstream SERVFAIL tries the next", func(t *testing.T) {
		bad := startHandler(t, func(w mdns.ResponseWriter, req *mdns.Msg) {
			r := new(mdns.Msg)
			r.SetRcode(req, mdns.RcodeServerFailure)
			_ = w.WriteMsg(r)
		})
		ts := startServer(t, Config{Upstreams: []string{bad, up.addr}})
		wantA(t, ts.query(t, "udp", "example.com.", mdns.TypeA), "example.com.", "192.0.2.1")
	})
	t.Run("own address is not an upstream", func(t *testing.T) {
		// Point the server at itself: it must not ask itself (a loop), only the real upstream.
		tl, pc, self, err := bindPair("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = tl.Close(), pc.Close()
		for _, ups := range [][]string{{self.String(), up.addr}, {self.String()}} {
			s, err := New(Config{Upstreams: ups})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Listen(self.String()); err != nil {
				t.Fatal(err)
			}
			ts := &testServer{Server: s, addr: self.String()}
			r := ts.query(t, "udp", "example.com.", mdns.TypeA)
			if len(ups) == 2 {
				wantA(t, r, "example.com.", "192.0.2.1")
			} else if r.Rcode != mdns.RcodeServerFailure {
				t.Fatalf("rcode %s, want SERVFAIL without asking itself", mdns.RcodeToString[r.Rcode])
			}
			if got := testutil.ToFloat64(s.m.upstreamErrors.WithLabelValues("timeout")); got != 0 {
				t.Errorf("upstreams %v: %v timeouts, want none (it asked itself)", ups, got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// startHandler serves h over UDP on loopback and returns the address.
func startHandler(t *testing.T, h mdns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestServerSetTable(t *testing.T) {
	ts := startServer(t, Config{Upstreams: []string{"127.0.0.1:1"}})
	wantA(t, ts.query(t, "udp", "web.", mdns.TypeA), "web.", "10.213.0.1")
	ts.SetTable(NewTable([]Service{{Name: "web", VIP: netip.MustParseAddr("10.213.9.9")}, {Name: "new", VIP: netip.MustParseAddr("10.213.9.10")}}, nil))
	wantA(t, ts.query(t, "udp", "web.", mdns.TypeA), "web.", "10.213.9.9")
	wantA(t, ts.query(t, "udp", "new.constellation.internal.", mdns.TypeA), "new.constellation.internal.", "10.213.9.10")
	if r := ts.query(t, "udp", "web-0.web.constellation.internal.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("removed replica name: rcode %s, want NXDOMAIN", mdns.RcodeToString[r.Rcode])
	}
	if got := testutil.ToFloat64(ts.m.collectors[4].(prometheus.Collector)); got != 2 {
		t.Errorf("names gauge %v, want 2", got)
	}
	ts.SetTable(nil)
	if r := ts.query(t, "udp", "web.constellation.internal.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("empty table: rcode %s, want NXDOMAIN", mdns.RcodeToString[r.Rcode])
	}
}

func TestServerMalformed(t *testing.T) {
	ts := startServer(t, Config{Upstreams: []string{"127.0.0.1:1"}})
	conn, err := net.Dial("udp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// A header that parses and a body that does not: FORMERR (miekg/dns's behaviour), counted.
	q := new(mdns.Msg)
	q.SetQuestion("web.", mdns.TypeA)
	packed, _ := q.Pack()
	if _, err := conn.Write(packed[:len(packed)-3]); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no FORMERR for a cut query: %v", err)
	}
	var r mdns.Msg
	if err := r.Unpack(buf[:n]); err != nil || r.Rcode != mdns.RcodeFormatError || r.Id != q.Id {
		t.Fatalf("answer to a cut query: %v rcode %s, want FORMERR with the same id", err, mdns.RcodeToString[r.Rcode])
	}
	// Shorter than a header, and a response sent to us: no answer at all.
	for _, p := range [][]byte{{1, 2, 3}, func() []byte {
		resp := new(mdns.Msg)
		resp.SetReply(q)
		b, _ := resp.Pack()
		return b
	}()} {
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	// The server still answers, and the next thing on this socket is that answer (the two
	// packets above got none).
	if _, err := conn.Write(packed); err != nil {
		t.Fatal(err)
	}
	n, err = conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Unpack(buf[:n]); err != nil || r.Id != q.Id || len(r.Answer) != 1 {
		t.Fatalf("after garbage: %v %v", err, r.String())
	}
	if got := testutil.ToFloat64(ts.m.dropped.WithLabelValues("malformed")); got != 2 {
		t.Errorf("malformed %v, want 2", got)
	}
	// The response is ignored in the packet's own goroutine, which may still be running.
	waitFor(t, "the response counted", func() bool { return testutil.ToFloat64(ts.m.dropped.WithLabelValues("response")) == 1 })
}

func TestServerOverload(t *testing.T) {
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	slow := startHandler(t, func(w mdns.ResponseWriter, req *mdns.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
		<-release
		r := new(mdns.Msg)
		r.SetReply(req)
		_ = w.WriteMsg(r)
	})
	t.Cleanup(unblock) // before the slow upstream's Shutdown, which waits for its handler: a failing test does not hang
	ts := startServer(t, Config{Upstreams: []string{slow}, MaxForwards: 1, ForwardTimeout: 10 * time.Second})
	first := make(chan *mdns.Msg, 1)
	go func() {
		m := new(mdns.Msg)
		m.SetQuestion("slow.example.", mdns.TypeA)
		r, _, _ := (&mdns.Client{Timeout: 10 * time.Second}).Exchange(m, ts.addr)
		first <- r
	}()
	<-got // the first forward is in flight and holds the only slot
	r := ts.query(t, "udp", "other.example.", mdns.TypeA)
	if r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("second forward: rcode %s, want SERVFAIL (overload)", mdns.RcodeToString[r.Rcode])
	}
	wantA(t, ts.query(t, "udp", "web.", mdns.TypeA), "web.", "10.213.0.1") // mesh names are not limited
	unblock()
	if r := <-first; r == nil || r.Rcode != mdns.RcodeSuccess {
		t.Fatalf("first forward: %v", r)
	}
	if got := testutil.ToFloat64(ts.m.dropped.WithLabelValues("overload")); got != 1 {
		t.Errorf("overload %v, want 1", got)
	}
}

func TestServerListen(t *testing.T) {
	s, err := New(Config{Upstreams: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetTable(testTable())
	a1, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s.Listen("127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	if _, err := s.Listen("127.0.0.1:0"); err == nil {
		t.Fatal("second Listen on the same address: no error")
	}
	for _, a := range []netip.AddrPort{a1, a2} {
		ts := &testServer{Server: s, addr: a.String()}
		wantA(t, ts.query(t, "udp", "web.", mdns.TypeA), "web.", "10.213.0.1")
		wantA(t, ts.query(t, "tcp", "web.", mdns.TypeA), "web.", "10.213.0.1")
	}
	if err := s.Unlisten(context.Background(), "127.0.0.2:0"); err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs(); !slices.Equal(got, []netip.AddrPort{a1}) {
		t.Fatalf("Addrs after Unlisten = %v, want [%v]", got, a1)
	}
	m := new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	if _, _, err := (&mdns.Client{Net: "tcp", Timeout: time.Second}).Exchange(m, a2.String()); err == nil {
		t.Fatal("still answering on an address after Unlisten")
	}
}

func TestServerSetListenAddrs(t *testing.T) {
	s, err := New(Config{Upstreams: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tl, pc, free, err := bindPair("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tl.Close(), pc.Close()
	ctx := context.Background()
	if err := s.SetListenAddrs(ctx, []string{free.String(), "192.0.2.1:53"}); err == nil || !strings.Contains(err.Error(), "192.0.2.1:53") {
		t.Fatalf("SetListenAddrs with an address not on this host: %v, want an error naming it", err)
	}
	if got := s.Addrs(); !slices.Equal(got, []netip.AddrPort{free}) {
		t.Fatalf("Addrs = %v, want [%v] (the good address is served)", got, free)
	}
	if err := s.SetListenAddrs(ctx, []string{free.String()}); err != nil { // unchanged: no rebind
		t.Fatal(err)
	}
	if err := s.SetListenAddrs(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs(); len(got) != 0 {
		t.Fatalf("Addrs = %v, want none", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{TTL: time.Millisecond}, "ttl"},
		{Config{Upstreams: []string{"dns.google"}}, "upstreams[0]"},
		{Config{Upstreams: []string{"1.1.1.1", "1.1.1.1:x"}}, "upstreams[1]"},
		{Config{MaxForwards: -1}, "maxForwards"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	for in, want := range map[string]string{"1.1.1.1": "1.1.1.1:53", "127.0.0.53": "127.0.0.53:53", "[::1]:5353": "[::1]:5353", "10.0.0.1:5300": "10.0.0.1:5300", "fe80::1%eth0": "[fe80::1%eth0]:53"} {
		if got, err := upstreamAddr(in); err != nil || got != want {
			t.Errorf("upstreamAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	write := func(s string, mod time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// systemd-resolved's stub on loopback is kept: the agent (not the container) asks it.
	write("# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver bogus\noptions edns0 trust-ad\nsearch lan\n", t0)
	u := newUpstreams(Config{ResolvConf: path}, nil)
	if got := u.get(); !slices.Equal(got, []string{"127.0.0.53:53", "192.0.2.53:53"}) {
		t.Fatalf("upstreams %v", got)
	}
	write("nameserver 198.51.100.1\n", t0.Add(time.Second))
	if got := u.get(); !slices.Equal(got, []string{"198.51.100.1:53"}) {
		t.Fatalf("after a rewrite: %v", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := u.get(); !slices.Equal(got, []string{"198.51.100.1:53"}) {
		t.Fatalf("after removal: %v, want the last good list", got)
	}
	// A fixed list wins over the file.
	u = newUpstreams(Config{ResolvConf: path, Upstreams: []string{"10.0.0.1"}}, nil)
	if got := u.get(); !slices.Equal(got, []string{"10.0.0.1:53"}) {
		t.Fatalf("fixed: %v", got)
	}
}

// BenchmarkRespondMesh is the in-process cost of answering a mesh name (no network).
func BenchmarkRespondMesh(b *testing.B) {
	s, err := New(Config{Upstreams: []string{"127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	s.SetTable(testTable())
	req := new(mdns.Msg)
	req.SetQuestion("web-1.web.constellation.internal.", mdns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if r := s.respond(req, false); len(r.Answer) != 1 {
			b.Fatal(r)
		}
	}
}

// BenchmarkQueryUDP is one mesh query over loopback UDP through miekg/dns's client and server.
func BenchmarkQueryUDP(b *testing.B) {
	s, err := New(Config{Upstreams: []string{"127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetTable(testTable())
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	c := &mdns.Client{}
	conn, err := c.Dial(addr.String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := new(mdns.Msg)
	req.SetQuestion("web.", mdns.TypeA)
	for b.Loop() {
		if r, _, err := c.ExchangeWithConn(req, conn); err != nil || len(r.Answer) != 1 {
			b.Fatal(r, err)
		}
	}
}

package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// udpSize is the EDNS0 payload size this server advertises and uses when it answers over UDP a
// client that advertised more (the DNS flag day 2020 figure: no IP fragmentation on any path).
const udpSize = 1232

// Server answers mesh names from the current Table and forwards everything else. One Server
// serves any number of listening addresses (one per Constellation bridge gateway), all sharing
// the table, the upstreams and the limits.
type Server struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	up  *upstreams

	table atomic.Pointer[Table]
	sem   chan struct{} // forwards in flight

	// exchange sends one query to one upstream; replaced in tests and the fuzz test.
	exchange func(ctx context.Context, m *mdns.Msg, network, addr string) (*mdns.Msg, error)

	ctx    context.Context // cancelled by Close: aborts forwards in flight
	cancel context.CancelFunc

	mu sync.Mutex
	// guarded by mu:
	listeners map[string]*listener // by the address given to Listen
	closed    bool
}

type listener struct {
	udp, tcp *mdns.Server
	addr     netip.AddrPort // bound, the same port for UDP and TCP
}

// New returns a Server with an empty Table (every mesh-domain name is NXDOMAIN until SetTable)
// and no listener (call Listen). Metrics are registered on cfg.Registerer when it is not nil.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger, reg := cfg.Logger, cfg.Registerer
	s := &Server{
		cfg:       cfg,
		log:       logger,
		up:        newUpstreams(cfg, logger),
		sem:       make(chan struct{}, cfg.MaxForwards),
		listeners: map[string]*listener{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.exchange = s.exchangeNet
	m, err := newMetrics(reg, func() float64 { return float64(s.table.Load().Len()) })
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// SetTable swaps the name table atomically: every query that starts after SetTable returns sees
// t. A nil t empties the table.
func (s *Server) SetTable(t *Table) { s.table.Store(t) }

// Listen starts answering on addr ("ip:port") over UDP and TCP, both on the same port (with port
// 0 the TCP port is chosen first and UDP takes the same). It returns the bound address. In
// production addr is a bridge network's gateway IP with port 53 (binding it needs
// CAP_NET_BIND_SERVICE, and the gateway address must exist: after the network is created).
func (s *Server) Listen(addr string) (netip.AddrPort, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return netip.AddrPort{}, errors.New("meshdns: server closed")
	}
	if _, ok := s.listeners[addr]; ok {
		return netip.AddrPort{}, fmt.Errorf("meshdns: listen %s: already listening", addr)
	}
	tl, pc, bound, err := bindPair(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("meshdns: listen %s: %w", addr, err)
	}
	l := &listener{addr: bound}
	l.udp = s.newServer(pc, nil)
	l.tcp = s.newServer(nil, netutil.LimitListener(tl, s.cfg.MaxTCPConns))
	for i, srv := range []*mdns.Server{l.udp, l.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			if i > 0 {
				_ = l.udp.Shutdown()
			}
			_ = pc.Close()
			_ = tl.Close()
			return netip.AddrPort{}, fmt.Errorf("meshdns: serve %s: %w", addr, err)
		}
	}
	s.listeners[addr] = l
	s.log.Info("mesh dns: listening", "addr", bound.String())
	return bound, nil
}

func (s *Server) newServer(pc net.PacketConn, l net.Listener) *mdns.Server {
	return &mdns.Server{
		PacketConn:     pc,
		Listener:       l,
		Handler:        mdns.HandlerFunc(s.serveDNS),
		UDPSize:        mdns.MaxMsgSize, // read buffer: a query bigger than the client's limit is still read whole
		ReadTimeout:    5 * time.Second,
		WriteTimeout:   5 * time.Second,
		MaxTCPQueries:  128,
		MsgAcceptFunc:  s.accept,
		MsgInvalidFunc: func([]byte, error) { s.m.dropped.WithLabelValues("malformed").Inc() },
	}
}

// bindPair binds TCP and UDP on the same address and port.
func bindPair(addr string) (net.Listener, net.PacketConn, netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, netip.AddrPort{}, fmt.Errorf("want IP:port: %w", err)
	}
	var lastErr error
	for range 10 { // port 0: the TCP port may be taken for UDP; try another
		tl, err := net.Listen("tcp", ap.String())
		if err != nil {
			return nil, nil, netip.AddrPort{}, err
		}
		bound := tl.Addr().(*net.TCPAddr).AddrPort()
		bound = netip.AddrPortFrom(ap.Addr(), bound.Port())
		pc, err := net.ListenPacket("udp", bound.String())
		if err == nil {
			return tl, pc, bound, nil
		}
		_ = tl.Close()
		lastErr = err
		if ap.Port() != 0 {
			break
		}
	}
	return nil, nil, netip.AddrPort{}, lastErr
}

// Unlisten stops answering on addr (as given to Listen), waiting for queries being answered.
func (s *Server) Unlisten(ctx context.Context, addr string) error {
	s.mu.Lock()
	l, ok := s.listeners[addr]
	delete(s.listeners, addr)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("meshdns: unlisten %s: not listening", addr)
	}
	return l.shutdown(ctx)
}

func (l *listener) shutdown(ctx context.Context) error {
	return errors.Join(l.udp.ShutdownContext(ctx), l.tcp.ShutdownContext(ctx))
}

// SetListenAddrs converges the listeners to exactly addrs ("ip:port" each, as given to Listen):
// it starts the missing ones and stops the others. An address that fails to bind is reported in
// the joined error (naming it) and tried again on the next call; the others are still served.
// Call it whenever the set of bridge networks (their gateways) changes, or periodically.
func (s *Server) SetListenAddrs(ctx context.Context, addrs []string) error {
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
	}
	s.mu.Lock()
	var stale []string
	for a := range s.listeners {
		if !want[a] {
			stale = append(stale, a)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, a := range stale {
		if err := s.Unlisten(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	for _, a := range addrs {
		s.mu.Lock()
		_, ok := s.listeners[a]
		s.mu.Unlock()
		if ok {
			continue
		}
		if _, err := s.Listen(a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Addrs returns the bound addresses of all listeners.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.AddrPort
	for _, l := range s.listeners {
		out = append(out, l.addr)
	}
	return out
}

// Close stops every listener, aborts forwards in flight and unregisters nothing (metrics stay
// registered on the Registerer given to New until Unregister).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ls := s.listeners
	s.listeners = map[string]*listener{}
	s.mu.Unlock()
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Unregister removes the Server's metrics from the Registerer given to New.
func (s *Server) Unregister() { s.m.unregister() }

// accept is miekg/dns's default filter (responses ignored, one question, no updates), counted.
func (s *Server) accept(dh mdns.Header) mdns.MsgAcceptAction {
	a := mdns.DefaultMsgAcceptFunc(dh)
	switch a {
	case mdns.MsgIgnore:
		s.m.dropped.WithLabelValues("response").Inc()
	case mdns.MsgReject, mdns.MsgRejectNotImplemented:
		s.m.dropped.WithLabelValues("rejected").Inc()
	}
	return a
}

func (s *Server) serveDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	tcp := false
	if a := w.LocalAddr(); a != nil {
		_, tcp = a.(*net.TCPAddr)
	}
	resp := s.respond(req, tcp)
	if resp == nil {
		return
	}
	if !tcp {
		resp.Truncate(clientUDPSize(req))
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("mesh dns: write answer", "client", w.RemoteAddr(), "err", err)
	}
}

// clientUDPSize is the largest UDP answer the client accepts: its EDNS0 size (at most ours), or
// 512 without EDNS0.
func clientUDPSize(req *mdns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return max(mdns.MinMsgSize, min(int(opt.UDPSize()), udpSize))
	}
	return mdns.MinMsgSize
}

// respond computes the answer to one query; nil means no answer (drop).
func (s *Server) respond(req *mdns.Msg, tcp bool) *mdns.Msg {
	if req.Response {
		s.m.dropped.WithLabelValues("response").Inc()
		return nil
	}
	if req.Opcode != mdns.OpcodeQuery || len(req.Question) != 1 {
		s.m.dropped.WithLabelValues("rejected").Inc()
		r := new(mdns.Msg)
		r.SetRcode(req, mdns.RcodeNotImplemented)
		if len(req.Question) != 1 {
			r.SetRcodeFormatError(req)
		}
		r.Ns, r.Answer, r.Extra = nil, nil, nil
		return r
	}
	q := req.Question[0]
	var ans Answer
	if q.Qclass == mdns.ClassINET || q.Qclass == mdns.ClassANY {
		ans = s.table.Load().Lookup(q.Name)
	}
	if ans.Kind == Forward {
		return s.forward(req, tcp)
	}
	return s.meshAnswer(req, q, ans)
}

func (s *Server) meshAnswer(req *mdns.Msg, q mdns.Question, ans Answer) *mdns.Msg {
	r := new(mdns.Msg)
	r.SetReply(req)
	r.Authoritative = true
	r.RecursionAvailable = true
	if opt := req.IsEdns0(); opt != nil {
		r.SetEdns0(udpSize, false)
	}
	ttl := uint32(s.cfg.TTL / time.Second)
	hdr := func(t uint16) mdns.RR_Header {
		return mdns.RR_Header{Name: q.Name, Rrtype: t, Class: mdns.ClassINET, Ttl: ttl}
	}
	switch {
	case ans.Kind == NXDomain:
		r.Rcode = mdns.RcodeNameError
		r.Ns = []mdns.RR{s.soa()}
		s.m.queries.WithLabelValues("nxdomain").Inc()
		return r
	case ans.Kind == Address && ans.Addr.Is4() && (q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeANY):
		r.Answer = []mdns.RR{&mdns.A{Hdr: hdr(mdns.TypeA), A: ans.Addr.AsSlice()}}
	case ans.Kind == Address && ans.Addr.Is6() && (q.Qtype == mdns.TypeAAAA || q.Qtype == mdns.TypeANY):
		r.Answer = []mdns.RR{&mdns.AAAA{Hdr: hdr(mdns.TypeAAAA), AAAA: ans.Addr.AsSlice()}}
	case q.Qtype == mdns.TypeSOA && lowerASCII(q.Name) == Domain+".":
		r.Answer = []mdns.RR{s.soa()}
	}
	if len(r.Answer) > 0 {
		s.m.queries.WithLabelValues("answer").Inc()
		return r
	}
	// NODATA: the name exists, not this type. The SOA lets the client cache that for TTL.
	r.Ns = []mdns.RR{s.soa()}
	s.m.queries.WithLabelValues("nodata").Inc()
	return r
}

func (s *Server) soa() mdns.RR {
	ttl := uint32(s.cfg.TTL / time.Second)
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: Domain + ".", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: ttl},
		Ns:      "ns." + Domain + ".",
		Mbox:    "hostmaster." + Domain + ".",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}
}

// forward asks the upstreams in order, the next one on error, timeout, SERVFAIL or REFUSED, and
// relays the first real answer with the client's ID. It uses TCP when the client did (so that an
// answer too big for UDP arrives whole) and UDP otherwise (a truncated upstream answer is relayed
// with TC set, and the client retries over TCP).
func (s *Server) forward(req *mdns.Msg, tcp bool) *mdns.Msg {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.m.dropped.WithLabelValues("overload").Inc()
		return s.servfail(req)
	}
	network := "udp"
	if tcp {
		network = "tcp"
	}
	start := time.Now()
	fwd := req.Copy()
	fwd.Id = mdns.Id() // our own ID towards the upstream: the client's is not ours to reuse
	for _, up := range s.upstreamsNoLoop() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ForwardTimeout)
		r, err := s.exchange(ctx, fwd, network, up)
		cancel()
		if err == nil && r.Rcode != mdns.RcodeServerFailure && r.Rcode != mdns.RcodeRefused {
			s.m.forwardSeconds.Observe(time.Since(start).Seconds())
			s.m.queries.WithLabelValues("forwarded").Inc()
			r.Id = req.Id
			return r
		}
		reason := "error"
		if err == nil {
			reason = mdns.RcodeToString[r.Rcode]
		} else if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			reason = "timeout"
		}
		s.m.upstreamErrors.WithLabelValues(reason).Inc()
		s.log.Debug("mesh dns: upstream failed", "upstream", up, "network", network, "name", req.Question[0].Name, "reason", reason, "err", err)
	}
	return s.servfail(req)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) servfail(req *mdns.Msg) *mdns.Msg {
	s.m.queries.WithLabelValues("servfail").Inc()
	r := new(mdns.Msg)
	r.SetRcode(req, mdns.RcodeServerFailure)
	r.RecursionAvailable = true
	return r
}

// upstreamsNoLoop drops upstreams that are this server's own listeners (a resolv.conf that points
// at a bridge gateway would make a query go round forever).
func (s *Server) upstreamsNoLoop() []string {
	ups := s.up.get()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) == 0 {
		return ups
	}
	out := make([]string, 0, len(ups))
outer:
	for _, u := range ups {
		for _, l := range s.listeners {
			if l.addr.String() == u {
				continue outer
			}
		}
		out = append(out, u)
	}
	return out
}

func (s *Server) exchangeNet(ctx context.Context, m *mdns.Msg, network, addr string) (*mdns.Msg, error) {
	c := &mdns.Client{Net: network, Timeout: s.cfg.ForwardTimeout}
	if opt := m.IsEdns0(); opt == nil || opt.UDPSize() < mdns.MinMsgSize {
		c.UDPSize = mdns.MinMsgSize
	}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	return r, err
}

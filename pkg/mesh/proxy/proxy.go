package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Protocol is a listener's transport.
type Protocol string

// The protocols a Service port may use.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Key names one listener: a virtual IP, a port and a protocol.
type Key struct {
	Protocol Protocol
	VIP      netip.Addr
	Port     uint16
}

func (k Key) String() string {
	return string(k.Protocol) + "/" + netip.AddrPortFrom(k.VIP, k.Port).String()
}

func (k Key) compare(o Key) int {
	return cmp.Or(cmp.Compare(k.Protocol, o.Protocol), k.VIP.Compare(o.VIP), cmp.Compare(k.Port, o.Port))
}

// Entry is one listener and the endpoints behind it.
type Entry struct {
	Key
	// Service labels the entry's metrics and logs: "<svc>" for a Service's virtual IP,
	// "<svc>-<i>" for replica i's. (Service, Port, Protocol) must be unique in a Table.
	Service string
	// Endpoints are every replica serving this port, healthy or not (Order picks).
	Endpoints []Endpoint
}

// Table is everything this node's mesh should listen on.
type Table []Entry

// ErrUnknownListener is returned by SetEndpoints for a key no Sync has opened.
var ErrUnknownListener = errors.New("proxy: no such listener")

// ErrClosed is returned by Sync and SetEndpoints after Close or Shutdown.
var ErrClosed = errors.New("proxy: closed")

// Config configures a Proxy. The zero value of every field means its default.
type Config struct {
	// DialTimeout bounds one connect to one endpoint; a connect that fails or times out is
	// retried on the next endpoint. Default 1s.
	DialTimeout time.Duration
	// FailureBackoff is how long an endpoint whose connect failed is tried only after all
	// others. Default 2s.
	FailureBackoff time.Duration
	// UDPIdleTimeout ends a UDP session that saw no packet either way for this long. Default 60s.
	UDPIdleTimeout time.Duration
	// MaxUDPSessions bounds the sessions of one UDP listener; a packet from a new client beyond
	// it is dropped (and counted). Default 1024.
	MaxUDPSessions int
	// UDPBufferSize is the largest datagram relayed; longer ones are truncated. Default 65535.
	UDPBufferSize int
	// Registerer receives the constellation_mesh_* metrics. Default: none (not registered).
	Registerer prometheus.Registerer
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// ListenConfig opens listeners (for example with a Control function setting IP_FREEBIND,
	// so that a listener may open before its address is on an interface). Default: the zero
	// net.ListenConfig.
	ListenConfig *net.ListenConfig
	// Now is the clock for FailureBackoff. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		DialTimeout:    time.Second,
		FailureBackoff: 2 * time.Second,
		UDPIdleTimeout: 60 * time.Second,
		MaxUDPSessions: 1024,
		UDPBufferSize:  65535,
		Logger:         slog.Default(),
		ListenConfig:   &net.ListenConfig{},
		Now:            time.Now,
	}
}

func (c *Config) withDefaults() {
	d := DefaultConfig()
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.FailureBackoff == 0 {
		c.FailureBackoff = d.FailureBackoff
	}
	if c.UDPIdleTimeout == 0 {
		c.UDPIdleTimeout = d.UDPIdleTimeout
	}
	if c.MaxUDPSessions == 0 {
		c.MaxUDPSessions = d.MaxUDPSessions
	}
	if c.UDPBufferSize == 0 {
		c.UDPBufferSize = d.UDPBufferSize
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.ListenConfig == nil {
		c.ListenConfig = d.ListenConfig
	}
	if c.Now == nil {
		c.Now = d.Now
	}
}

func (c *Config) validate() error {
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("proxy config: DialTimeout: must not be negative, got %s", c.DialTimeout)
	case c.FailureBackoff < 0:
		return fmt.Errorf("proxy config: FailureBackoff: must not be negative, got %s", c.FailureBackoff)
	case c.UDPIdleTimeout < 0:
		return fmt.Errorf("proxy config: UDPIdleTimeout: must not be negative, got %s", c.UDPIdleTimeout)
	case c.MaxUDPSessions < 0:
		return fmt.Errorf("proxy config: MaxUDPSessions: must not be negative, got %d", c.MaxUDPSessions)
	case c.UDPBufferSize < 0 || c.UDPBufferSize > 65535:
		return fmt.Errorf("proxy config: UDPBufferSize: must be 1-65535, got %d", c.UDPBufferSize)
	}
	return nil
}

// Proxy forwards the listeners of a Table. It is safe for concurrent use.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	dialer net.Dialer
	ctx    context.Context // cancelled by Close: aborts connects in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy started

	mu       sync.Mutex
	ports    map[Key]*servicePort // guarded by mu
	flows    map[*flow]struct{}   // open TCP connections; guarded by mu
	closed   bool                 // Close was called; guarded by mu
	draining bool                 // Shutdown was called: no Sync may reopen; guarded by mu
}

// New returns a Proxy listening on nothing; call Sync to open listeners. It fails only on an
// invalid Config or when the metrics cannot be registered.
func New(cfg Config) (*Proxy, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Proxy{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "mesh-proxy"),
		m:      m,
		ctx:    ctx,
		cancel: cancel,
		ports:  map[Key]*servicePort{},
		flows:  map[*flow]struct{}{},
	}, nil
}

// Sync makes the proxy listen on exactly the table's keys: it opens listeners for new entries,
// swaps the endpoints of existing ones (open connections are kept) and closes listeners whose
// entry is gone (open TCP connections through them are kept until they end; UDP sessions end).
// Sync is level-triggered: a listener that fails to open is reported in the returned error and
// tried again by the next Sync; every other entry is still applied.
func (p *Proxy) Sync(t Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.draining {
		return ErrClosed
	}
	var errs []error
	want := make(map[Key]Entry, len(t))
	labels := map[string]Key{}
	for i, e := range t {
		if err := validateEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("mesh table[%d] (%s): %w", i, e.Key, err))
			continue
		}
		if _, dup := want[e.Key]; dup {
			errs = append(errs, fmt.Errorf("mesh table[%d]: %s: listed twice", i, e.Key))
			continue
		}
		l := fmt.Sprintf("%s/%s/%d", e.Service, e.Protocol, e.Port)
		if other, dup := labels[l]; dup {
			errs = append(errs, fmt.Errorf("mesh table[%d] (%s): service %q port %d/%s already used by %s", i, e.Key, e.Service, e.Port, e.Protocol, other))
			continue
		}
		labels[l] = e.Key
		want[e.Key] = e
	}
	for k, sp := range p.ports {
		if e, ok := want[k]; !ok || e.Service != sp.service {
			p.removeLocked(sp)
		}
	}
	for _, k := range sortedKeys(want) {
		e := want[k]
		if sp, ok := p.ports[k]; ok {
			sp.setEndpoints(e.Endpoints)
			continue
		}
		if err := p.openLocked(e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validateEntry(e Entry) error {
	switch {
	case e.Protocol != TCP && e.Protocol != UDP:
		return fmt.Errorf("protocol: must be tcp or udp, got %q", e.Protocol)
	case !e.VIP.IsValid():
		return errors.New("vip: must be set")
	case e.Port == 0:
		return errors.New("port: must be 1-65535, got 0")
	case e.Service == "":
		return errors.New("service: must be set")
	}
	return nil
}

func sortedKeys(m map[Key]Entry) []Key {
	keys := make([]Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, Key.compare)
	return keys
}

// SetEndpoints replaces the endpoints of one open listener atomically: connections already open
// stay where they are, new ones choose among eps only. Sync does the same for every entry.
func (p *Proxy) SetEndpoints(k Key, eps []Endpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.draining {
		return ErrClosed
	}
	sp, ok := p.ports[k]
	if !ok {
		return fmt.Errorf("set endpoints of %s: %w", k, ErrUnknownListener)
	}
	sp.setEndpoints(eps)
	return nil
}

// EndpointStatus is an endpoint with the connections (UDP: sessions) open to it now.
type EndpointStatus struct {
	Endpoint
	Active int64
}

// EntryStatus is one listener as the proxy sees it, for `ctl` and debugging.
type EntryStatus struct {
	Key
	Service   string
	Endpoints []EndpointStatus
}

// Snapshot returns every open listener and its endpoints, sorted by key.
func (p *Proxy) Snapshot() []EntryStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]EntryStatus, 0, len(p.ports))
	for _, sp := range p.ports {
		st := EntryStatus{Key: sp.key, Service: sp.service}
		for _, e := range sp.endpoints.Load().eps {
			st.Endpoints = append(st.Endpoints, EndpointStatus{Endpoint: e.Endpoint, Active: e.active.Load()})
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b EntryStatus) int { return a.Key.compare(b.Key) })
	return out
}

// Close closes every listener, ends every open connection and UDP session, and returns when
// every goroutine of the proxy has. An agent that stops takes its mesh connections with it
// anyway (they live in its process); Close makes that prompt and leak-free. See Shutdown for a
// graceful stop.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel()
		for _, sp := range p.ports {
			p.removeLocked(sp)
		}
		for f := range p.flows {
			f.close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Shutdown closes every listener at once (no new connections, UDP sessions end), waits for the
// open TCP connections to end by themselves until ctx is done, then does what Close does.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.draining = true
	if !p.closed {
		for _, sp := range p.ports {
			p.removeLocked(sp)
		}
	}
	p.mu.Unlock()
	drained := make(chan struct{})
	go func() { p.wg.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("mesh proxy shutdown: open connections closed: %w", ctx.Err())
	}
	p.Close()
	<-drained
	return err
}

func (p *Proxy) openLocked(e Entry) error {
	sp := &servicePort{key: e.Key, service: e.Service, m: p.m.forPort(e.Service, e.Port, e.Protocol)}
	sp.setEndpoints(e.Endpoints)
	addr := netip.AddrPortFrom(e.VIP, e.Port).String()
	switch e.Protocol {
	case TCP:
		ln, err := p.cfg.ListenConfig.Listen(p.ctx, "tcp", addr)
		if err != nil {
			p.m.deletePort(e.Service, e.Port, e.Protocol)
			return fmt.Errorf("mesh listener %s for service %q: %w", e.Key, e.Service, err)
		}
		sp.closeFn = func() { ln.Close() }
		p.wg.Add(1)
		go p.serveTCP(sp, ln)
	case UDP:
		pc, err := p.cfg.ListenConfig.ListenPacket(p.ctx, "udp", addr)
		if err != nil {
			p.m.deletePort(e.Service, e.Port, e.Protocol)
			return fmt.Errorf("mesh listener %s for service %q: %w", e.Key, e.Service, err)
		}
		u := &udpPort{p: p, sp: sp, conn: pc.(*net.UDPConn), sessions: map[netip.AddrPort]*udpSession{}}
		sp.closeFn = u.close
		sp.onEndpoints = u.dropStale
		p.wg.Add(1)
		go u.serve()
	}
	p.ports[e.Key] = sp
	p.log.Debug("mesh listener open", "listener", e.Key.String(), "service", e.Service, "endpoints", len(e.Endpoints))
	return nil
}

func (p *Proxy) removeLocked(sp *servicePort) {
	delete(p.ports, sp.key)
	sp.closeFn()
	p.m.deletePort(sp.service, sp.key.Port, sp.key.Protocol)
	p.log.Debug("mesh listener closed", "listener", sp.key.String(), "service", sp.service)
}

// servicePort is one listener's state shared by its forwarder goroutines.
type servicePort struct {
	key         Key
	service     string
	m           portMetrics
	closeFn     func()             // stops listening; set once before serving starts
	onEndpoints func(*endpointSet) // UDP: end sessions on endpoints no longer usable
	endpoints   atomic.Pointer[endpointSet]
	rr          atomic.Uint64 // round-robin counter for Order's ties
	setMu       sync.Mutex    // serialises setEndpoints (the swap reads the previous set)
}

// endpointSet is immutable once published; the counters in it are shared with the previous
// and next sets for the same address, so least-connections carries across updates.
type endpointSet struct {
	eps []*endpointState
}

type endpointState struct {
	Endpoint
	active      *atomic.Int64 // connections open or connecting
	failedUntil *atomic.Int64 // unix nanoseconds: suspect until then
}

func (sp *servicePort) setEndpoints(eps []Endpoint) {
	sp.setMu.Lock()
	defer sp.setMu.Unlock()
	prev := map[string]*endpointState{}
	if old := sp.endpoints.Load(); old != nil {
		for _, e := range old.eps {
			prev[e.Address] = e
		}
	}
	set := &endpointSet{eps: make([]*endpointState, 0, len(eps))}
	healthy := 0
	for _, e := range eps {
		st := &endpointState{Endpoint: e}
		if old, ok := prev[e.Address]; ok {
			st.active, st.failedUntil = old.active, old.failedUntil
		} else {
			st.active, st.failedUntil = new(atomic.Int64), new(atomic.Int64)
		}
		if e.Healthy {
			healthy++
		}
		set.eps = append(set.eps, st)
	}
	sp.endpoints.Store(set)
	sp.m.endpointsHealthy.Set(float64(healthy))
	sp.m.endpointsTotal.Set(float64(len(eps)))
	if sp.onEndpoints != nil {
		sp.onEndpoints(set)
	}
}

// order returns the endpoints to try for a new connection, and reserves none.
func (p *Proxy) order(sp *servicePort) []*endpointState {
	set := sp.endpoints.Load()
	now := p.cfg.Now().UnixNano()
	cands := make([]Candidate, len(set.eps))
	for i, e := range set.eps {
		cands[i] = Candidate{Endpoint: e.Endpoint, Active: e.active.Load(), Suspect: e.failedUntil.Load() > now}
	}
	idx := Order(cands, sp.rr.Add(1)-1)
	out := make([]*endpointState, len(idx))
	for i, j := range idx {
		out[i] = set.eps[j]
	}
	return out
}

func (p *Proxy) markFailed(e *endpointState) {
	e.failedUntil.Store(p.cfg.Now().Add(p.cfg.FailureBackoff).UnixNano())
}

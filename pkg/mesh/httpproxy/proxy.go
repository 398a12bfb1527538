package httpproxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Key names one HTTP listener: a virtual IP and a port.
type Key struct {
	VIP  netip.Addr
	Port uint16
}

func (k Key) String() string { return netip.AddrPortFrom(k.VIP, k.Port).String() }

// Entry is one listener, its policy and its upstreams.
type Entry struct {
	Key
	// Service labels metrics and logs; unique per Key's port within a Table.
	Service   string
	Policy    Policy
	Upstreams []Upstream
}

// Table is every HTTP listener of a node.
type Table []Entry

// Config configures a Proxy. The zero value of every field means its default.
type Config struct {
	// Registerer receives the constellation_proxy_* metrics. Default: none.
	Registerer prometheus.Registerer
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// ListenConfig opens listeners (IP_FREEBIND in the agent). Default the zero one.
	ListenConfig *net.ListenConfig
	// Clock. Default the real clock.
	Clock clock.WithDelayedExecution
	// Transport for direct attempts. Default NewTransport(nil).
	Transport http.RoundTripper
	// ReadHeaderTimeout of the listeners' servers. Default 30s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout of client keep-alive connections. Default 120s.
	IdleTimeout time.Duration
}

// Proxy serves a Table's listeners. It is safe for concurrent use.
type Proxy struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	via *viaTransports

	mu     sync.Mutex
	ls     map[Key]*listener // guarded by mu
	closed bool              // guarded by mu
}

type listener struct {
	service string
	h       *Handler
	srv     *http.Server
	done    chan struct{}
}

// New returns a Proxy listening on nothing.
func New(cfg Config) (*Proxy, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ListenConfig == nil {
		cfg.ListenConfig = &net.ListenConfig{}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(nil)
	}
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Proxy{cfg: cfg, log: cfg.Logger.With("component", "http-proxy"), m: m, via: newViaTransports(), ls: map[Key]*listener{}}, nil
}

// Sync makes the proxy serve exactly the table: new listeners open, existing ones get their
// policy and upstreams swapped (breakers and parks kept by upstream name), gone ones close. A
// listener that fails to open is reported and tried again by the next Sync.
func (p *Proxy) Sync(t Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("http proxy: closed")
	}
	var errs []error
	want := map[Key]Entry{}
	for i, e := range t {
		if !e.VIP.IsValid() || e.Port == 0 || e.Service == "" {
			errs = append(errs, fmt.Errorf("http proxy table[%d] (%s): vip, port and service must be set", i, e.Key))
			continue
		}
		if _, dup := want[e.Key]; dup {
			errs = append(errs, fmt.Errorf("http proxy table[%d]: %s listed twice", i, e.Key))
			continue
		}
		want[e.Key] = e
	}
	for k, l := range p.ls {
		if e, ok := want[k]; !ok || e.Service != l.service {
			p.closeLocked(k, l)
		}
	}
	keys := make([]Key, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b Key) int { return cmp.Or(a.VIP.Compare(b.VIP), cmp.Compare(a.Port, b.Port)) })
	for _, k := range keys {
		e := want[k]
		if l, ok := p.ls[k]; ok {
			if err := l.h.Set(e.Policy, e.Upstreams); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := p.openLocked(e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Proxy) openLocked(e Entry) error {
	h := NewHandler(HandlerConfig{Service: e.Service, Clock: p.cfg.Clock, Transport: p.cfg.Transport, ViaTransport: p.via.get,
		Logger: p.cfg.Logger, metrics: p.m})
	if err := h.Set(e.Policy, e.Upstreams); err != nil {
		return err
	}
	ln, err := p.cfg.ListenConfig.Listen(context.Background(), "tcp", e.Key.String())
	if err != nil {
		return fmt.Errorf("http listener %s for service %q: %w", e.Key, e.Service, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: p.cfg.ReadHeaderTimeout, IdleTimeout: p.cfg.IdleTimeout,
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
	l := &listener{service: e.Service, h: h, srv: srv, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Warn("http listener stopped", "listener", e.Key.String(), "service", e.Service, "err", err)
		}
	}()
	p.ls[e.Key] = l
	p.log.Debug("http listener open", "listener", e.Key.String(), "service", e.Service, "upstreams", len(e.Upstreams))
	return nil
}

func (p *Proxy) closeLocked(k Key, l *listener) {
	delete(p.ls, k)
	// In-flight requests finish in the background (bounded by their timeouts).
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx)
	}()
	stillUsed := false
	for _, o := range p.ls {
		stillUsed = stillUsed || o.service == l.service
	}
	if !stillUsed {
		p.m.deleteService(l.service)
	}
}

// ListenerStatus is one listener as the proxy sees it (GET /api/mesh, ctl).
type ListenerStatus struct {
	Key
	Service   string
	Upstreams []UpstreamStatus
}

// Snapshot returns every listener with its upstreams' breakers, sorted by key.
func (p *Proxy) Snapshot() []ListenerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ListenerStatus, 0, len(p.ls))
	for k, l := range p.ls {
		out = append(out, ListenerStatus{Key: k, Service: l.service, Upstreams: l.h.Upstreams()})
	}
	slices.SortFunc(out, func(a, b ListenerStatus) int { return cmp.Or(a.VIP.Compare(b.VIP), cmp.Compare(a.Port, b.Port)) })
	return out
}

// Shutdown closes every listener and waits for requests in flight until ctx is done.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	ls := p.ls
	p.ls = map[Key]*listener{}
	p.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.srv.Shutdown(ctx); err != nil {
			l.srv.Close()
			errs = append(errs, err)
		}
		<-l.done
	}
	return errors.Join(errs...)
}

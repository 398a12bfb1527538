// The Handler: its config, its upstreams and their state, and Set, which replaces them.

package httpproxy

import (
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Headers the proxy sets.
const (
	// HeaderUpstream names the upstream that answered: its URL, or "<node>/<svc>-<i>" for a
	// replica; "none" when the proxy answered itself (no upstream available).
	HeaderUpstream = "X-Constellation-Upstream"
	// HeaderRequestID is propagated to the upstream and back, generated when missing.
	HeaderRequestID = "X-Request-Id"
)

// Upstream is one place a listener's requests can go.
type Upstream struct {
	// Name is what HeaderUpstream says and what metrics and breakers are keyed by: the URL of
	// an outside upstream, "<node>/<svc>-<i>" for a replica. Unique within an Entry.
	Name string
	// URL is the scheme and host[:port] to send to, and a path prefix prepended to the
	// request's path.
	URL *url.URL
	// RewriteHost sends URL's host as the Host header (outside upstreams); otherwise the
	// client's Host is kept (replicas).
	RewriteHost bool
	// Weight for OrderWeighted (at least 1).
	Weight int
	// Priority for OrderPriority: lower first; equal priorities take turns.
	Priority int
	// Healthy: false takes the upstream out of every pick (a replica not Ready, a via egress
	// not EgressHealthy or unknown: never dialled directly instead).
	Healthy bool
	// Via dials through an egress proxy; nil: direct.
	Via *Via
}

// Via is an egress proxy: Scheme "socks5" or "http" (CONNECT), at Address (ip:port).
type Via struct {
	Scheme  string
	Address string
}

// upstreamState is an upstream with what the handler learnt about it, kept across Set calls
// while its Name stays.
type upstreamState struct {
	Upstream
	rt          http.RoundTripper
	br          *breaker
	brPolicy    BreakerPolicy
	parkedUntil atomic.Int64  // unix nanoseconds
	ewma        atomic.Uint64 // float64 bits: moving average of seconds to headers
	attempts    map[string]prometheus.Counter
	headerTime  prometheus.Observer
	parks       prometheus.Counter
}

// handlerState is immutable once published.
type handlerState struct {
	policy Policy
	on     matcher
	ups    []*upstreamState
	budget *budget
}

// HandlerConfig configures a Handler. The zero value of every field means its default.
type HandlerConfig struct {
	// Service labels metrics and logs.
	Service string
	// Clock times per-try and first-byte timeouts, breakers' open periods, Retry-After parks
	// and the retry budget. Default the real clock.
	Clock clock.WithDelayedExecution
	// Transport sends direct attempts; Via attempts get one Transport per egress from
	// ViaTransport. Default NewTransport().
	Transport http.RoundTripper
	// ViaTransport returns the RoundTripper for an egress. Default: a Transport dialling
	// through it (see DialVia), one per egress, shared by the Handlers of a Proxy.
	ViaTransport func(Via) http.RoundTripper
	// Rand returns a uniform float in [0, 1) for OrderWeighted. Default math/rand/v2.
	Rand func() float64
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Metrics. Default: unregistered ones.
	metrics *metrics
}

// Handler proxies one listener's requests. It is safe for concurrent use; Set swaps its policy
// and upstreams atomically.
type Handler struct {
	cfg     HandlerConfig
	log     *slog.Logger
	m       *metrics
	service string
	rr      atomic.Uint64
	bufs    sync.Pool

	durObs       prometheus.Observer
	budgetOut    prometheus.Counter
	setMu        sync.Mutex // serialises Set
	state        atomic.Pointer[handlerState]
	defaultTrans http.RoundTripper
}

// NewHandler returns a Handler with no upstreams (every request gets 503 until Set).
func NewHandler(cfg HandlerConfig) *Handler {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(nil)
	}
	if cfg.ViaTransport == nil {
		vt := newViaTransports()
		cfg.ViaTransport = vt.get
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.metrics == nil {
		cfg.metrics, _ = newMetrics(nil)
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "http-proxy", "service", cfg.Service), m: cfg.metrics,
		service: cfg.Service}
	h.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	h.durObs = h.m.duration.WithLabelValues(cfg.Service)
	h.budgetOut = h.m.budgetOut.WithLabelValues(cfg.Service)
	p := DefaultPolicy()
	on, _ := compileOn(p.On)
	h.state.Store(&handlerState{policy: p, on: on, budget: newBudget(p.RetryBudget, cfg.Clock)})
	return h
}

// Set replaces the policy and the upstreams. An upstream whose Name was there before keeps its
// breaker (unless the breaker policy changed), its Retry-After park and its latency average.
func (h *Handler) Set(p Policy, ups []Upstream) error {
	p.withDefaults()
	on, err := compileOn(p.On)
	if err != nil {
		return err
	}
	h.setMu.Lock()
	defer h.setMu.Unlock()
	old := h.state.Load()
	prev := map[string]*upstreamState{}
	for _, u := range old.ups {
		prev[u.Name] = u
	}
	st := &handlerState{policy: p, on: on, budget: old.budget}
	if old.policy.RetryBudget != p.RetryBudget || old.budget == nil {
		st.budget = newBudget(p.RetryBudget, h.cfg.Clock)
	}
	names := map[string]bool{}
	for _, u := range ups {
		if u.Name == "" || u.URL == nil || names[u.Name] {
			return fmt.Errorf("http proxy %s: upstream %q: empty, without URL or listed twice", h.service, u.Name)
		}
		names[u.Name] = true
		if u.Weight < 1 {
			u.Weight = 1
		}
		s := &upstreamState{Upstream: u}
		if o, ok := prev[u.Name]; ok && o.brPolicy == p.Breaker {
			s.br, s.brPolicy = o.br, o.brPolicy
			s.parkedUntil.Store(o.parkedUntil.Load())
			s.ewma.Store(o.ewma.Load())
		} else {
			s.brPolicy = p.Breaker
			name := u.Name
			s.br = newBreaker(h.service+" "+name, p.Breaker, h.cfg.Clock, func(from, to BreakerState) {
				h.m.breakerState.WithLabelValues(h.service, name).Set(stateValue(to))
				h.m.breakerChange.WithLabelValues(h.service, name, string(to)).Inc()
				h.log.Info("upstream breaker "+string(to), "upstream", name, "from", string(from))
			})
			h.m.breakerState.WithLabelValues(h.service, name).Set(0)
		}
		if u.Via != nil {
			s.rt = h.cfg.ViaTransport(*u.Via)
		} else {
			s.rt = h.cfg.Transport
		}
		s.attempts = map[string]prometheus.Counter{}
		for _, o := range []string{"ok", "never_sent", "declined", "ambiguous", "client_gone"} {
			s.attempts[o] = h.m.attempts.WithLabelValues(h.service, u.Name, o)
		}
		s.headerTime = h.m.upstreamTime.WithLabelValues(h.service, u.Name)
		s.parks = h.m.parks.WithLabelValues(h.service, u.Name)
		st.ups = append(st.ups, s)
	}
	for name := range prev {
		if !names[name] {
			l := prometheus.Labels{"service": h.service, "upstream": name}
			for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{h.m.requests, h.m.attempts, h.m.breakerState,
				h.m.breakerChange, h.m.parks, h.m.upstreamTime} {
				v.DeletePartialMatch(l)
			}
		}
	}
	h.state.Store(st)
	return nil
}

// UpstreamStatus is one upstream as the handler sees it now.
type UpstreamStatus struct {
	Name    string
	Healthy bool
	Breaker BreakerState
	// ParkedFor is what is left of a Retry-After park; 0: not parked.
	ParkedFor time.Duration
	// Latency is the moving average of the time to response headers; 0: none seen.
	Latency time.Duration
}

// Upstreams returns every upstream's state, in Set's order.
func (h *Handler) Upstreams() []UpstreamStatus {
	st := h.state.Load()
	now := h.cfg.Clock.Now().UnixNano()
	out := make([]UpstreamStatus, 0, len(st.ups))
	for _, u := range st.ups {
		s := UpstreamStatus{Name: u.Name, Healthy: u.Healthy, Breaker: u.br.state(),
			Latency: time.Duration(math.Float64frombits(u.ewma.Load()) * float64(time.Second))}
		if p := u.parkedUntil.Load(); p > now {
			s.ParkedFor = time.Duration(p - now)
		}
		out = append(out, s)
	}
	return out
}

var _ http.Handler = (*Handler)(nil)

package traefik

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Paths the agent mounts the handlers at.
const (
	ProviderPath = "/api/providers/traefik"
	RoutesPath   = "/api/routes"
)

// ErrNotRendered is Ready's error before the first configuration has been rendered.
var ErrNotRendered = errors.New("traefik: no configuration rendered yet")

// ErrWarmingUp is why nothing is rendered yet on an agent that just started: observed state has
// not synced (see ProviderConfig.Synced).
var ErrWarmingUp = errors.New("waiting for observed state to sync (gossip and the local node)")

// Lister is the part of store.Store the provider reads.
type Lister interface {
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Lister = (store.Store)(nil)

// ProviderConfig configures a Provider.
type ProviderConfig struct {
	// Store holds Services and Secrets. Required. Reads are stale (local): routes keep being
	// served from the local replica when the cluster has no quorum.
	Store Lister
	// View is observed state: nodes and replicas. Required.
	View observed.View
	// Logger. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives the provider's metrics. Default: none registered.
	Registerer prometheus.Registerer
	// Now is the clock, for timestamps in Ready and metrics. Default time.Now.
	Now func() time.Time
	// Health holds the node-health timings: a restarting node's endpoints are kept for its
	// restart grace. Zero fields take nodehealth's defaults (RestartGrace:
	// nodehealth.DefaultRestartGrace).
	Health nodehealth.Policy
	// Resync re-lists everything this often even without a change notification. Default 30s.
	Resync time.Duration
	// Debounce is the minimum time between two renders: bursts of changes coalesce. Default 100ms.
	Debounce time.Duration
	// ReadTimeout bounds one re-list of the store. Default 5s.
	ReadTimeout time.Duration
	// RetryBackoff is the wait before re-opening a failed store watch. Default 1s.
	RetryBackoff time.Duration
	// EntryPoints the local Traefik's static configuration defines. When set, routes naming
	// another entry point are left out (and reported) instead of being disabled by Traefik.
	// Default: empty, any valid name is rendered.
	EntryPoints []string
	// Synced, when set, is closed once observed state is worth serving: on an agent that just
	// started, gossip has exchanged state with a peer (or there is none) and the local node
	// reconciler has published its replicas. Until then (or until WarmUp passes) nothing is
	// rendered and the provider endpoint answers 503, so Traefik keeps the configuration it
	// had instead of taking a rendering whose server lists are all empty. Default nil: no
	// warm-up, render at once.
	Synced <-chan struct{}
	// WarmUp caps the wait for Synced, counted from Run: after it the provider renders what it
	// knows (an isolated node still serves its own routes). Default 10s.
	WarmUp time.Duration
}

func (c *ProviderConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	if c.Debounce <= 0 {
		c.Debounce = 100 * time.Millisecond
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Second
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Second
	}
	if c.WarmUp <= 0 {
		c.WarmUp = 10 * time.Second
	}
}

func (c *ProviderConfig) validate() error {
	if c.Store == nil {
		return errors.New("traefik: provider config: Store is required")
	}
	if c.View == nil {
		return errors.New("traefik: provider config: View is required")
	}
	return nil
}

// snapshot is one good rendering; it is never changed once published.
type snapshot struct {
	body     []byte
	etag     string
	routes   []byte // JSON RouteList
	problems []Problem
	at       time.Time
}

// Provider renders Traefik's dynamic configuration on change and serves the last good one.
type Provider struct {
	cfg     ProviderConfig
	log     *slog.Logger
	metrics *metrics
	poke    chan struct{}
	// syncMu serialises refreshes, so an older rendering is never published after a newer one.
	syncMu sync.Mutex
	// guarded by syncMu: the last listing of the store, reused when only observed state changed.
	services []*v1.Service
	secrets  []*v1.Secret
	listed   bool
	// listFailed: the last read failed, so the next refresh reads again even for a view change.
	listFailed bool
	// warm: Synced was closed or the warm-up cap passed; nothing is rendered before.
	warm atomic.Bool
	// polls: who fetched the configuration, and when (polls.go).
	polls pollTracker

	mu sync.RWMutex
	// guarded by mu:
	cur      *snapshot // nil until the first good render
	lastErr  error     // error of the last refresh, nil when it succeeded
	lastErrT time.Time // when refreshes started failing
	listedAt time.Time // copy of the last good store read's time, for Ready
}

// NewProvider returns a provider that serves nothing (503) until Run has rendered once.
func NewProvider(cfg ProviderConfig) (*Provider, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("traefik: register metrics: %w", err)
	}
	p := &Provider{cfg: cfg, log: cfg.Logger.With("component", "traefik-provider"), metrics: m, poke: make(chan struct{}, 1)}
	p.warm.Store(cfg.Synced == nil)
	return p, nil
}

// Run renders now (or, with Synced set, once warm), then again after every store change,
// observed-state change or resync period, until ctx ends. It returns ctx's error.
func (p *Provider) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.watchStore(ctx)
	}()

	// The view trigger is observed.OnChange, as in every controller; the loop below debounces.
	// A signal left pending while a render runs causes one more render: no change is missed.
	viewChanged := make(chan struct{}, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		observed.OnChange(ctx, nil, p.cfg.View, 0, func() {
			select {
			case viewChanged <- struct{}{}:
			default:
			}
		})
	}()

	resync := time.NewTicker(p.cfg.Resync)
	defer resync.Stop()
	// Until warm, synced and warmUp are the only cases that matter; both are switched off
	// (nil) once warm.
	var synced <-chan struct{}
	var warmUp <-chan time.Time
	if !p.warm.Load() {
		synced = p.cfg.Synced
		t := time.NewTimer(p.cfg.WarmUp)
		defer t.Stop()
		warmUp = t.C
	}
	relist := true
	for {
		_ = p.refresh(ctx, relist)
		relist = false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-viewChanged:
		case <-p.poke:
			relist = true
		case <-resync.C:
			relist = true
		case <-synced:
			p.log.Info("observed state synced; serving traefik configuration")
			p.warm.Store(true)
			synced, warmUp = nil, nil
		case <-warmUp:
			p.log.Warn("observed state not synced within the warm-up cap; serving traefik configuration from what is known",
				"warmUp", p.cfg.WarmUp)
			p.metrics.warmUpExpired.Inc()
			p.warm.Store(true)
			synced, warmUp = nil, nil
		}
		// Let a burst settle: one render for many changes.
		t := time.NewTimer(p.cfg.Debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		select {
		case <-p.poke:
			relist = true
		default:
		}
	}
}

// watchStore pokes the render loop on every Service or Secret change. A failed watch is
// re-opened after a pause and followed by a poke: rendering re-lists, so nothing is missed.
func (p *Provider) watchStore(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := p.cfg.Store.Watch(ctx, "", 0)
		if err == nil {
			p.pokeLoop()
			for ev := range ch {
				if ev.Type == store.Error {
					err = ev.Err
					break
				}
				if ev.Object == nil {
					continue
				}
				if k := ev.Object.GetTypeMeta().Kind; k == v1.KindService || k == v1.KindSecret {
					p.pokeLoop()
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch closed")
		}
		p.metrics.watchRestarts.Inc()
		p.log.Warn("store watch failed; re-opening", "err", err, "after", p.cfg.RetryBackoff)
		t := time.NewTimer(p.cfg.RetryBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (p *Provider) pokeLoop() {
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// Sync re-lists the store, renders and publishes the result if it changed. When the store
// cannot be read, the routes of the last good read are rendered with the live endpoints (a dead
// replica still leaves; nothing is torn down because the store is unreachable); when nothing was
// ever read, or rendering fails, the last good configuration stays. Either way the error is
// logged, counted and returned by Ready. Run calls it; tests and the agent may too (it is safe to
// call concurrently with Run).
func (p *Provider) Sync(ctx context.Context) error { return p.refresh(ctx, true) }

// refresh renders, re-listing the store first when relist is set or nothing was listed yet;
// otherwise (only observed state changed) it reuses the last listing, so a health flap costs a
// render, not a store read.
func (p *Provider) refresh(ctx context.Context, relist bool) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	start := time.Now()
	var listErr error
	if relist || !p.listed || p.listFailed {
		svcs, secs, err := p.list(ctx)
		p.listFailed = err != nil
		if err != nil {
			listErr = err
			p.metrics.storeErrors.Inc()
		} else {
			p.services, p.secrets, p.listed = svcs, secs, true
			p.mu.Lock()
			p.listedAt = p.cfg.Now()
			p.mu.Unlock()
		}
	}
	var err error
	if p.listed && p.warm.Load() {
		err = p.render()
	}
	p.metrics.renderSeconds.Observe(time.Since(start).Seconds())
	if err == nil {
		err = listErr
	}

	now := p.cfg.Now()
	p.mu.Lock()
	prev := p.lastErr
	p.lastErr = err
	if err != nil && prev == nil {
		p.lastErrT = now
	}
	listedAt := p.listedAt
	p.mu.Unlock()
	switch {
	case err == nil:
		p.metrics.healthy.Set(1)
		p.metrics.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
		if prev != nil {
			p.log.Info("traefik configuration refresh recovered")
		}
	case prev == nil:
		p.metrics.healthy.Set(0)
		if p.listed {
			p.log.Error("cannot refresh traefik configuration; serving routes from the last good store read with live endpoints",
				"err", err, "storeReadAt", listedAt)
		} else {
			p.log.Error("cannot render traefik configuration; nothing to serve yet", "err", err)
		}
	default:
		p.log.Debug("traefik configuration refresh still failing", "err", err)
	}
	return err
}

// list reads Services and Secrets from the local store replica.
func (p *Provider) list(ctx context.Context) ([]*v1.Service, []*v1.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadTimeout)
	defer cancel()
	svcObjs, _, err := p.cfg.Store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	secObjs, _, err := p.cfg.Store.List(ctx, v1.KindSecret, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, nil, fmt.Errorf("list secrets: %w", err)
	}
	svcs := make([]*v1.Service, 0, len(svcObjs))
	for _, o := range svcObjs {
		s, ok := o.(*v1.Service)
		if !ok {
			return nil, nil, fmt.Errorf("list services: got %T", o)
		}
		svcs = append(svcs, s)
	}
	secs := make([]*v1.Secret, 0, len(secObjs))
	for _, o := range secObjs {
		s, ok := o.(*v1.Secret)
		if !ok {
			return nil, nil, fmt.Errorf("list secrets: got %T", o)
		}
		secs = append(secs, s)
	}
	return svcs, secs, nil
}

// render renders the last listing with the current observed state and publishes it if it
// changed. Callers hold syncMu.
func (p *Provider) render() (err error) {
	defer func() {
		// A bug in rendering must not take routing down with it. The stack says where it was.
		if r := recover(); r != nil {
			p.log.Error("traefik rendering panicked; keeping the last good configuration", "panic", r, "stack", string(debug.Stack()))
			p.metrics.renderPanics.Inc()
			err = fmt.Errorf("render: panic: %v", r)
		}
		if err != nil {
			p.metrics.renders.WithLabelValues("error").Inc()
		}
	}()
	st := State{Services: p.services, Secrets: p.secrets, Nodes: p.cfg.View.Nodes(), Replicas: p.cfg.View.Replicas(), EntryPoints: p.cfg.EntryPoints,
		Now: p.cfg.Now(), Health: p.cfg.Health}
	cfg, problems := Render(st)
	body, err := Encode(cfg)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	routes, err := json.Marshal(RouteList{Items: Routes(cfg), Problems: problems})
	if err != nil {
		return fmt.Errorf("encode routes: %w", err)
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`

	now := p.cfg.Now()
	p.mu.Lock()
	prev := p.cur
	changed := prev == nil || prev.etag != etag
	problemsChanged := prev == nil || !slices.Equal(prev.problems, problems)
	if changed {
		p.cur = &snapshot{body: body, etag: etag, routes: routes, problems: problems, at: now}
	} else if string(prev.routes) != string(routes) {
		p.cur = &snapshot{body: prev.body, etag: prev.etag, routes: routes, problems: problems, at: prev.at}
	}
	p.mu.Unlock()

	p.metrics.problems.Set(float64(len(problems)))
	if problemsChanged {
		for _, pr := range problems {
			p.log.Warn("route left out of traefik configuration", "service", pr.Service, "field", pr.Field, "problem", pr.Message)
		}
	}
	if !changed {
		p.metrics.renders.WithLabelValues("unchanged").Inc()
		return nil
	}
	p.metrics.renders.WithLabelValues("changed").Inc()
	p.metrics.configBytes.Set(float64(len(body)))
	var nHTTP, nTCP, nUDP, servers int
	if cfg.HTTP != nil {
		nHTTP = len(cfg.HTTP.Routers)
		for _, s := range cfg.HTTP.Services {
			servers += len(s.LoadBalancer.Servers)
		}
	}
	if cfg.TCP != nil {
		nTCP = len(cfg.TCP.Routers)
		for _, s := range cfg.TCP.Services {
			servers += len(s.LoadBalancer.Servers)
		}
	}
	if cfg.UDP != nil {
		nUDP = len(cfg.UDP.Routers)
		for _, s := range cfg.UDP.Services {
			servers += len(s.LoadBalancer.Servers)
		}
	}
	p.metrics.routers.WithLabelValues("http").Set(float64(nHTTP))
	p.metrics.routers.WithLabelValues("tcp").Set(float64(nTCP))
	p.metrics.routers.WithLabelValues("udp").Set(float64(nUDP))
	p.metrics.servers.Set(float64(servers))
	p.log.Info("traefik configuration changed", "etag", etag, "bytes", len(body),
		"httpRouters", nHTTP, "tcpRouters", nTCP, "udpRouters", nUDP, "servers", servers, "problems", len(problems))
	return nil
}

// Ready is nil when the configuration served is current: rendered from the latest re-list. It
// fails before the first render and while refreshing fails (the last good configuration is
// still served then). The agent's /readyz includes it.
func (p *Provider) Ready() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch {
	case p.cur == nil && !p.warm.Load():
		return fmt.Errorf("%w: %w", ErrNotRendered, ErrWarmingUp)
	case p.cur == nil && p.lastErr != nil:
		return fmt.Errorf("%w: %w", ErrNotRendered, p.lastErr)
	case p.cur == nil:
		return ErrNotRendered
	case p.lastErr != nil:
		return fmt.Errorf("traefik: refresh failing since %s; serving routes from the store read at %s, configuration rendered at %s: %w",
			p.lastErrT.UTC().Format(time.RFC3339), p.listedAt.UTC().Format(time.RFC3339), p.cur.at.UTC().Format(time.RFC3339), p.lastErr)
	}
	return nil
}

// Config returns the configuration served and its ETag; nil before the first render.
func (p *Provider) Config() (body []byte, etag string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cur == nil {
		return nil, ""
	}
	return p.cur.body, p.cur.etag
}

// Problems returns the routes the current configuration leaves out, with the field to fix.
func (p *Provider) Problems() []Problem {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.cur == nil {
		return nil
	}
	return append([]Problem(nil), p.cur.problems...)
}

func (p *Provider) snapshot() *snapshot {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur
}

// ServeHTTP serves GET /api/providers/traefik: the last good configuration with an ETag, 304
// for a matching If-None-Match, 503 before the first render. It never renders.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, func(s *snapshot) []byte { return s.body }, true)
}

// RoutesHandler serves GET /api/routes: a RouteList of what Traefik is being told.
func (p *Provider) RoutesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, func(s *snapshot) []byte { return s.routes }, false)
	})
}

func (p *Provider) serve(w http.ResponseWriter, r *http.Request, body func(*snapshot) []byte, isConfig bool) {
	code := p.serveCode(w, r, body, isConfig)
	if isConfig {
		p.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
		p.polls.record(r, code, p.cfg.Now())
	}
}

func (p *Provider) serveCode(w http.ResponseWriter, r *http.Request, body func(*snapshot) []byte, isConfig bool) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return http.StatusMethodNotAllowed
	}
	s := p.snapshot()
	if s == nil {
		// Traefik's HTTP provider keeps its current configuration on a non-200 answer.
		w.Header().Set("Retry-After", "1")
		msg := ErrNotRendered.Error()
		if !p.warm.Load() {
			msg += ": " + ErrWarmingUp.Error()
		}
		writeError(w, http.StatusServiceUnavailable, msg)
		return http.StatusServiceUnavailable
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	if isConfig {
		h.Set("ETag", s.etag)
		if etagMatch(r.Header.Get("If-None-Match"), s.etag) {
			w.WriteHeader(http.StatusNotModified)
			return http.StatusNotModified
		}
	}
	b := body(s)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return http.StatusOK
}

// etagMatch implements If-None-Match's weak comparison over a list of tags or "*".
func etagMatch(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || tag == etag || tag == "W/"+etag {
			return true
		}
	}
	return false
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

type metrics struct {
	renders       *prometheus.CounterVec
	renderSeconds prometheus.Histogram
	healthy       prometheus.Gauge
	lastSuccess   prometheus.Gauge
	configBytes   prometheus.Gauge
	routers       *prometheus.GaugeVec
	servers       prometheus.Gauge
	problems      prometheus.Gauge
	watchRestarts prometheus.Counter
	storeErrors   prometheus.Counter
	requests      *prometheus.CounterVec
	renderPanics  prometheus.Counter
	warmUpExpired prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "constellation", "traefik"
	m := &metrics{
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "renders_total",
			Help: "Renders by result: changed, unchanged, error (the last good configuration is kept)."}, []string{"result"}),
		renderSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "render_duration_seconds",
			Help: "Time to re-list the store and render the configuration.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "config_current",
			Help: "1 when the last refresh succeeded, 0 while the last good configuration is served after a failure."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_success_timestamp_seconds",
			Help: "When the configuration was last refreshed successfully."}),
		configBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "config_bytes",
			Help: "Size of the configuration served."}),
		routers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "routers",
			Help: "Routers in the configuration served, by protocol."}, []string{"protocol"}),
		servers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "servers",
			Help: "Healthy servers in the configuration served."}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "route_problems",
			Help: "Routes left out of the configuration served (conflicts, invalid input, missing secrets)."}),
		watchRestarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "store_watch_restarts_total",
			Help: "Times the store watch failed and was re-opened."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "store_errors_total",
			Help: "Failed reads of Services and Secrets; routes from the last good read stay, with live endpoints."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "provider_requests_total",
			Help: "Requests to the Traefik provider endpoint by status code."}, []string{"code"}),
		renderPanics: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "render_panics_total",
			Help: "Renders that panicked (recovered and logged with their stack; the last good configuration stays)."}),
		warmUpExpired: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "warmup_expired_total",
			Help: "Starts where observed state did not sync within the warm-up cap, so the provider served what it knew."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.renders, m.renderSeconds, m.healthy, m.lastSuccess, m.configBytes, m.routers, m.servers, m.problems, m.watchRestarts, m.storeErrors, m.requests, m.renderPanics, m.warmUpExpired} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

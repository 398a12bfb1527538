// The Provider: its config, construction, and Run, which serves Traefik's HTTP provider while
// keeping the rendered config current.

package traefik

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

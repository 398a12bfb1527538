package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/utils/clock"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is what the elector needs of the store.
type Store = store.Writer

// Config configures an Elector.
type Config struct {
	// Store holds the Lease. Required.
	Store Store
	// Name of the Lease object. Required.
	Name string
	// Identity of this candidate (the node name). Required.
	Identity string
	// Duration of the lease. Default 6s.
	Duration time.Duration
	// RenewInterval between renewals and between attempts to acquire. Default Duration/6.
	RenewInterval time.Duration
	// DriftFactor is the assumed bound on clock rate difference between nodes. Default 0.2.
	DriftFactor float64
	// Clock times the lease: its Now must carry a monotonic reading (the real clock's does),
	// and After paces renewals. Default clock.RealClock{}.
	Clock clock.Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults for lease name and identity.
func DefaultConfig(name, identity string) Config {
	return Config{Name: name, Identity: identity, Duration: 6 * time.Second, DriftFactor: 0.2}
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("lease: config: Store is required")
	}
	if c.Name == "" || !v1.IsDNSLabel(c.Name) {
		return fmt.Errorf("lease: name %q is not a DNS label", c.Name)
	}
	if c.Identity == "" {
		return errors.New("lease: identity is required")
	}
	if c.Duration <= 0 {
		c.Duration = 6 * time.Second
	}
	if c.Duration < time.Second {
		// The Lease object stores whole seconds; round up so others never see a shorter lease.
		c.Duration = c.Duration.Round(time.Second)
		if c.Duration == 0 {
			c.Duration = time.Second
		}
	}
	if c.RenewInterval <= 0 {
		c.RenewInterval = c.Duration / 6
	}
	if c.RenewInterval >= c.Duration/2 {
		return fmt.Errorf("lease %s: renewInterval %s must be under half the duration %s", c.Name, c.RenewInterval, c.Duration)
	}
	if c.DriftFactor <= 0 || c.DriftFactor >= 0.5 {
		c.DriftFactor = 0.2
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Elector campaigns for one Lease.
type Elector struct {
	cfg   Config
	store Store
	log   *slog.Logger

	mu sync.Mutex
	// guarded by mu:
	deadline time.Time // this candidate leads while Now() is before it
	holder   string    // last holder seen
	observed observation
}

// observation is the version of the lease a candidate saw and when it first saw it.
type observation struct {
	rv     string
	holder string
	at     time.Time
	secs   int32
}

// New returns an elector; Run starts it.
func New(cfg Config) (*Elector, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Elector{cfg: cfg, store: cfg.Store, log: cfg.Logger.With("lease", cfg.Name, "identity", cfg.Identity)}, nil
}

// IsLeader reports whether this candidate holds the lease now. It turns false on its own when
// renewal stops succeeding, before anyone else can acquire the lease.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Clock.Now().Before(e.deadline)
}

// Holder returns the last holder this candidate saw ("" if none).
func (e *Elector) Holder() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.holder
}

// Run campaigns until ctx ends, then releases the lease if held. Each time this candidate
// becomes leader, lead is started with a context that is cancelled as soon as leadership is
// lost or about to be; Run waits for lead to return before campaigning again.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) {
	var term *term
	defer func() {
		term.stop()
		e.release()
	}()
	for {
		e.tryAcquireOrRenew(ctx)
		leading := e.IsLeader()
		switch {
		case leading && term == nil && lead != nil:
			term = startTerm(ctx, lead)
			e.log.Info("started leading")
		case !leading && term != nil:
			e.log.Warn("stopped leading")
			term.stop()
			term = nil
		}
		wait := e.cfg.RenewInterval
		if leading {
			// Wake at the deadline at the latest, so the leader context ends on time even when
			// renewals hang.
			e.mu.Lock()
			if d := e.deadline.Sub(e.cfg.Clock.Now()); d < wait {
				wait = d
			}
			e.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-e.cfg.Clock.After(wait):
		}
	}
}

// term is one period of leadership: the lead function running under its own context.
type term struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startTerm(ctx context.Context, lead func(ctx context.Context)) *term {
	lctx, cancel := context.WithCancel(ctx)
	t := &term{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		lead(lctx)
	}()
	return t
}

// stop cancels the term and waits for lead to return. A nil term is a no-op.
func (t *term) stop() {
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
}

// tryAcquireOrRenew makes one attempt. Its outcome is recorded in e.deadline.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) {
	sent := e.cfg.Clock.Now()
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RenewInterval*2)
	defer cancel()
	secs := int32((e.cfg.Duration + time.Second - 1) / time.Second)

	obj, err := e.store.Get(rctx, v1.KindLease, e.cfg.Name)
	if errors.Is(err, store.ErrNotFound) {
		l := &v1.Lease{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindLease}}
		l.Metadata.Name = e.cfg.Name
		now := sent.UTC().Truncate(time.Millisecond)
		l.Spec = v1.LeaseSpec{HolderIdentity: e.cfg.Identity, LeaseDurationSeconds: secs, AcquireTime: &now, RenewTime: &now}
		if _, err := e.store.Create(rctx, l); err != nil {
			e.log.Debug("acquire failed", "err", err)
			return
		}
		e.won(sent, e.cfg.Identity)
		return
	}
	if err != nil {
		e.log.Debug("read lease failed", "err", err)
		return
	}
	l := obj.(*v1.Lease)
	rv := l.Metadata.ResourceVersion
	e.mu.Lock()
	if e.observed.rv != rv {
		e.observed = observation{rv: rv, holder: l.Spec.HolderIdentity, at: e.cfg.Clock.Now(), secs: l.Spec.LeaseDurationSeconds}
	}
	obs := e.observed
	e.holder = l.Spec.HolderIdentity
	e.mu.Unlock()

	mine := l.Spec.HolderIdentity == e.cfg.Identity
	expired := l.Spec.HolderIdentity == "" ||
		e.cfg.Clock.Now().Sub(obs.at) >= time.Duration(obs.secs)*time.Second
	if !mine && !expired {
		return
	}
	next := l.DeepCopyObject().(*v1.Lease)
	now := sent.UTC().Truncate(time.Millisecond)
	next.Spec.RenewTime = &now
	next.Spec.LeaseDurationSeconds = secs
	if !mine {
		next.Spec.HolderIdentity = e.cfg.Identity
		next.Spec.AcquireTime = &now
		next.Spec.LeaseTransitions++
	}
	if _, err := e.store.Update(rctx, next); err != nil {
		e.log.Debug("renew failed", "err", err, "mine", mine)
		return
	}
	if !mine {
		e.log.Info("acquired lease", "previous", l.Spec.HolderIdentity)
	}
	e.won(sent, e.cfg.Identity)
}

func (e *Elector) won(sent time.Time, holder string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deadline = sent.Add(time.Duration(float64(e.cfg.Duration) * (1 - e.cfg.DriftFactor)))
	e.holder = holder
}

// release gives the lease up so a successor need not wait for expiry.
func (e *Elector) release() {
	e.mu.Lock()
	held := e.cfg.Clock.Now().Before(e.deadline)
	e.deadline = time.Time{}
	e.mu.Unlock()
	if !held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	obj, err := e.store.Get(ctx, v1.KindLease, e.cfg.Name)
	if err != nil {
		return
	}
	l := obj.(*v1.Lease)
	if l.Spec.HolderIdentity != e.cfg.Identity {
		return
	}
	l.Spec.HolderIdentity = ""
	l.Spec.LeaseDurationSeconds = 0
	if _, err := e.store.Update(ctx, l); err != nil {
		e.log.Warn("release failed; successor waits for expiry", "err", err)
		return
	}
	e.log.Info("released lease")
}

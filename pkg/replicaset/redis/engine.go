// The Engine: its clients to members and sentinels, its Config, and Reconcile, the entry point.

package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// SecretPassword is the key of Desired.Secrets holding the members' password (read by the
// controller from spec.redis.passwordSecret).
const SecretPassword = "password"

// Member health values in status.members[].health.
const (
	HealthHealthy     = "healthy"
	HealthSyncing     = "syncing"     // a replica whose link to its master is down
	HealthUnreachable = "unreachable" // runs, but does not answer
	HealthNotReady    = "notReady"    // not running, or its node is lost
	// HealthDiverged: answers, but claims master or follows another master while the agreed
	// primary is someone else (a returning old master before Sentinel converts it).
	HealthDiverged = "diverged"
)

// Member roles in status.members[].role.
const (
	RoleMaster  = "master"
	RoleReplica = "replica"
	RoleUnknown = "unknown"
)

// Config holds the engine's own knobs; NewEngine uses DefaultConfig.
type Config struct {
	// ResetInterval spaces SENTINEL RESET: one sentinel at a time, at most one per interval
	// (the Sentinel docs ask for 30 s, so the reset one rediscovers the set before the next).
	// Default 30s.
	ResetInterval time.Duration
	// FailoverInterval spaces planned SENTINEL FAILOVER requests. Default: the set's
	// failover-timeout.
	FailoverInterval time.Duration
	// PauseWrites is how long CLIENT PAUSE WRITE holds writes on the master before a planned
	// failover, so the replica Sentinel promotes has every acknowledged write. Default 2s; a
	// negative value sends no pause.
	PauseWrites time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{ResetInterval: 30 * time.Second, PauseWrites: 2 * time.Second}
}

// Engine converges one Redis Sentinel topology (replicaset.Engine).
type Engine struct {
	opts replicaset.Options
	cfg  Config
	log  *slog.Logger

	mu sync.Mutex
	// guarded by mu:
	clients    map[string]*goredis.Client // by dial address and password
	subs       map[string]context.CancelFunc
	configured map[string]string // dial address → run_id+settings applied
	lastReset  time.Time
	lastFail   time.Time
	closed     bool
}

var _ replicaset.Engine = (*Engine)(nil)

// NewEngine returns a redis Engine with DefaultConfig.
func NewEngine(opts replicaset.Options) (replicaset.Engine, error) {
	return NewEngineWithConfig(opts, DefaultConfig())
}

// NewEngineWithConfig returns a redis Engine.
func NewEngineWithConfig(opts replicaset.Options, cfg Config) (*Engine, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if cfg.ResetInterval <= 0 {
		cfg.ResetInterval = DefaultConfig().ResetInterval
	}
	if cfg.PauseWrites == 0 {
		cfg.PauseWrites = DefaultConfig().PauseWrites
	}
	return &Engine{opts: opts, cfg: cfg, log: opts.Logger.With("engine", "redis", "replicaset", opts.Name),
		clients: map[string]*goredis.Client{}, subs: map[string]context.CancelFunc{}, configured: map[string]string{}}, nil
}

// Close closes every connection and subscription.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for _, cancel := range e.subs {
		cancel()
	}
	e.subs = map[string]context.CancelFunc{}
	var errs []error
	for k, c := range e.clients {
		errs = append(errs, c.Close())
		delete(e.clients, k)
	}
	return errors.Join(errs...)
}

func (e *Engine) client(addr, password string) *goredis.Client {
	key := addr + "\x00" + password
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[key]; ok {
		return c
	}
	o := &goredis.Options{
		Addr: addr, Password: password, Protocol: 2, DisableIdentity: true,
		DialTimeout: e.opts.Timeout, ReadTimeout: e.opts.Timeout, WriteTimeout: e.opts.Timeout,
		MaxRetries: -1, PoolSize: 4, ContextTimeoutEnabled: true,
	}
	if e.opts.Dial != nil {
		o.Dialer = e.opts.Dial
	}
	c := goredis.NewClient(o)
	e.clients[key] = c
	return c
}

// dropClients closes clients for addresses no longer in the set.
func (e *Engine) dropClients(keep map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, c := range e.clients {
		addr, _, _ := strings.Cut(k, "\x00")
		if !keep[addr] {
			_ = c.Close()
			delete(e.clients, k)
			delete(e.configured, addr)
		}
	}
	for addr, cancel := range e.subs {
		if !keep[addr] {
			cancel()
			delete(e.subs, addr)
		}
	}
}

// Reconcile reads every member and sentinel, decides one step (plan), carries it out and
// reports what it saw.
func (e *Engine) Reconcile(ctx context.Context, d replicaset.Desired) (replicaset.Observation, error) {
	set, err := settingsOf(d)
	if err != nil {
		return replicaset.Observation{}, err
	}
	now := d.Now
	if now.IsZero() {
		now = time.Now()
	}
	keep := map[string]bool{}
	for _, m := range d.Members {
		keep[m.Dial] = true
	}
	for _, s := range d.Sentinels {
		keep[s.Dial] = true
	}
	e.dropClients(keep)

	members := make([]memberView, len(d.Members))
	sentinels := make([]sentinelView, len(d.Sentinels))
	var wg sync.WaitGroup
	for i, m := range d.Members {
		wg.Add(1)
		go func() { defer wg.Done(); members[i] = e.readMember(ctx, m, set) }()
	}
	for i, s := range d.Sentinels {
		wg.Add(1)
		go func() { defer wg.Done(); sentinels[i] = e.readSentinel(ctx, s, set) }()
	}
	wg.Wait()
	e.subscribe(d.Sentinels)

	e.mu.Lock()
	in := planInput{Members: members, Sentinels: sentinels, LastPrimary: d.LastPrimary, Now: now,
		LastReset: e.lastReset, ResetInterval: e.cfg.ResetInterval,
		LastFailover: e.lastFail, FailoverInterval: e.cfg.FailoverInterval}
	e.mu.Unlock()
	if in.FailoverInterval <= 0 {
		in.FailoverInterval = set.failoverTimeout
	}
	p := plan(in)

	obs := replicaset.Observation{PrimaryAgreed: p.Agreed}
	if p.Primary >= 0 {
		obs.Primary = members[p.Primary].Name
	}
	var stepErrs []error
	for _, st := range p.Steps {
		line, err := e.apply(ctx, st, members, sentinels, d, set, now)
		if err != nil {
			stepErrs = append(stepErrs, fmt.Errorf("%s: %w", line, err))
			e.log.Warn("replica set step failed", "step", line, "why", st.Why, "err", err)
			break // one step at a time: the next reconcile reads again
		}
		obs.Actions = append(obs.Actions, line)
		e.log.Info("replica set step", "step", line, "why", st.Why)
	}
	obs.Members = memberStatuses(members, p)
	obs.Conditions = conditions(p, obs.Members, now)
	return obs, errors.Join(stepErrs...)
}

package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is the part of store.Store the status controller uses.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// Config configures a Controller. Start from DefaultConfig.
type Config struct {
	// Store holds Services and Nodes. Required.
	Store Store
	// View is the observed state gossip keeps. Required.
	View observed.View
	// SpecHash returns the hash a Service's replicas must run to count as updated (the
	// scheduler's revision: spechash.Current). Required.
	SpecHash func(*v1.Service) string
	// RaftRole returns a node's role in the replicated store, and false when unknown (the
	// stored raftRole is then left as it is). Nil: raftRole is never written.
	RaftRole func(node string) (v1.RaftRole, bool)
	// IsLeader is checked before every write: false while this node does not hold the
	// controller Lease. Nil: always leader (the caller's leader context is then the only fence).
	IsLeader func() bool
	// Clock is the time statuses are folded at, and the one the loop's delays (debounce,
	// requeues, the view's coalescing, the resync tickers) run on, so a test can step a fake
	// one. Default clock.RealClock{}.
	Clock clock.WithTicker
	// Debounce is the least time between two status writes of one object. Default 1s.
	Debounce time.Duration
	// LastSeenRefresh is how stale an alive Node's lastSeen may get before it is rewritten.
	// Default 1m.
	LastSeenRefresh time.Duration
	// Resync enqueues every Node this often: a raft role change arrives by no watch. Default 30s.
	Resync time.Duration
	// ServiceResync enqueues every Service this often. Every input of a Service's status arrives
	// as an event (its own store watch, a change of its observed replicas), so this is only a
	// safety net, and it is long: at 1000 Services a pass costs a fraction of a CPU-second.
	// Default 5m.
	ServiceResync time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the controller's metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *ctrl.Metrics
}

// DefaultConfig returns the defaults around the required pieces.
func DefaultConfig(st Store, view observed.View, specHash func(*v1.Service) string) Config {
	return Config{
		Store: st, View: view, SpecHash: specHash, Clock: clock.RealClock{},
		Debounce: time.Second, LastSeenRefresh: time.Minute, Resync: 30 * time.Second,
		ServiceResync: 5 * time.Minute,
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("status: config: Store is required"))
	}
	if c.View == nil {
		errs = append(errs, errors.New("status: config: View is required"))
	}
	if c.SpecHash == nil {
		errs = append(errs, errors.New("status: config: SpecHash is required"))
	}
	if c.Debounce < 0 || c.LastSeenRefresh < 0 || c.Resync < 0 || c.ServiceResync < 0 {
		errs = append(errs, errors.New("status: config: durations must not be negative"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	d := DefaultConfig(c.Store, c.View, c.SpecHash)
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Debounce == 0 {
		c.Debounce = d.Debounce
	}
	if c.LastSeenRefresh == 0 {
		c.LastSeenRefresh = d.LastSeenRefresh
	}
	if c.Resync == 0 {
		c.Resync = d.Resync
	}
	if c.ServiceResync == 0 {
		c.ServiceResync = d.ServiceResync
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return true }
	}
	return nil
}

// Controller is the status reconciler. Keys are v1.Key{Kind: Service|Node, Name}.
type Controller struct {
	cfg       Config
	log       *slog.Logger
	index     *observed.Index
	writes    *prometheus.CounterVec
	debounced *prometheus.CounterVec
	conflicts prometheus.Counter

	mu sync.Mutex
	// guarded by mu:
	lastWrite map[v1.Key]time.Time
	services  *ctrl.Cache[*v1.Service] // while Run runs; nil: read the store
	nodes     *ctrl.Cache[*v1.Node]    // likewise
	snap      *observed.Snapshot       // the view as of the last wake-up while Run runs; nil: ask index
	enqueue   func(v1.Key)             // the loop's Enqueue while Run runs; nil otherwise

	// afterReconcile, when set (by a test, before Run), is called with each key once its
	// reconcile is done: with enqueue, the loop's settled signal (one worker, FIFO).
	afterReconcile func(v1.Key)
}

var _ reconcile.TypedReconciler[v1.Key] = (*Controller)(nil)

// New returns a Controller.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg: cfg, log: cfg.Logger.With("controller", "status"), lastWrite: map[v1.Key]time.Time{},
		index: observed.NewIndex(cfg.View),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_status_writes_total", Help: "Status writes by the status controller, by kind.",
		}, []string{"kind"}),
		debounced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_status_debounced_total", Help: "Status changes held back because the object was written less than the debounce interval ago, by kind.",
		}, []string{"kind"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_status_conflicts_total", Help: "Status writes that lost a compare-and-swap and were retried.",
		}),
	}
	if r := cfg.Registerer; r != nil {
		for _, col := range []prometheus.Collector{c.writes, c.debounced, c.conflicts} {
			if err := r.Register(col); err != nil {
				return nil, fmt.Errorf("status: register metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Run folds observed state into the store until ctx ends. Call it with the leader context of
// the controller Lease; it may be called again after a later election.
//
// Wake-ups: an object's own change in the store (from informer caches, see ctrl.Cache); a
// view change enqueues the Services whose observed replicas changed and the Nodes whose
// observed state changed, found by diffing one snapshot of the view per change
// (observed.Snapshot.Diff) rather than folding every object; Resync for Nodes, ServiceResync for
// Services.
func (c *Controller) Run(ctx context.Context) {
	loop := ctrl.New[v1.Key]("status", c, ctrl.Options{Logger: c.cfg.Logger, Metrics: c.cfg.LoopMetrics, Clock: c.cfg.Clock})
	svcs := ctrl.NewCache(c.cfg.Store, v1.KindService, ctrl.CacheConfig[*v1.Service]{
		Logger: c.log, Handler: enqueueOnChange[*v1.Service](loop, v1.KindService),
	})
	nodes := ctrl.NewCache(c.cfg.Store, v1.KindNode, ctrl.CacheConfig[*v1.Node]{
		Logger: c.log, Handler: enqueueOnChange[*v1.Node](loop, v1.KindNode),
	})
	go svcs.Run(ctx)
	go nodes.Run(ctx)
	if !ctrl.WaitForSync(ctx, svcs, nodes) {
		return
	}
	c.setRunState(svcs, nodes, nil)
	defer c.setRunState(nil, nil, nil)
	c.mu.Lock()
	c.enqueue = loop.Enqueue
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.enqueue = nil
		c.mu.Unlock()
	}()
	var last *observed.Snapshot
	go observed.OnChange(ctx, c.cfg.Clock, c.cfg.View, viewCoalesce, func() {
		snap := c.index.Snapshot()
		services, changedNodes := snap.Diff(last)
		last = snap
		// Reconciles read this snapshot until the next wake-up, which enqueues whatever a
		// later change touches: one copy of the view per coalesced change.
		c.mu.Lock()
		if c.services != nil {
			c.snap = snap
		}
		c.mu.Unlock()
		for _, name := range services {
			loop.Enqueue(v1.Key{Kind: v1.KindService, Name: name})
		}
		for _, name := range changedNodes {
			loop.Enqueue(v1.Key{Kind: v1.KindNode, Name: name})
		}
	})
	resync := func(interval time.Duration, kind string, names func() []string) {
		t := c.cfg.Clock.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				for _, name := range names() {
					loop.Enqueue(v1.Key{Kind: kind, Name: name})
				}
			}
		}
	}
	go resync(c.cfg.Resync, v1.KindNode, nodes.Names)
	go resync(c.cfg.ServiceResync, v1.KindService, svcs.Names)
	loop.Run(ctx)
}

// viewCoalesce is how long view changes are folded into one wake-up (observed.OnChange).
const viewCoalesce = 50 * time.Millisecond

// enqueueOnChange enqueues an object when it is added, deleted, or changed (a relist that
// brings the same resourceVersion again is no change).
func enqueueOnChange[T v1.Object](loop *ctrl.Loop[v1.Key], kind string) ctrl.Handler[T] {
	enqueue := func(o T) { loop.Enqueue(v1.Key{Kind: kind, Name: o.GetMetadata().Name}) }
	return ctrl.Handler[T]{
		OnAdd: enqueue,
		OnUpdate: func(old, o T) {
			if old.GetMetadata().ResourceVersion != o.GetMetadata().ResourceVersion {
				enqueue(o)
			}
		},
		OnDelete: enqueue,
	}
}

// Reconcile folds the observed view into one Service's or Node's status.
func (c *Controller) Reconcile(ctx context.Context, key v1.Key) (reconcile.Result, error) {
	if c.afterReconcile != nil {
		defer c.afterReconcile(key)
	}
	if key.Kind != v1.KindService && key.Kind != v1.KindNode {
		return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("status: unexpected kind %q", key.Kind))
	}
	// While Run runs this is the cache's copy: shared, read-only, copied into next below. The
	// write is a compare-and-swap on its resourceVersion, so a cache that lags ends in a
	// conflict and a short requeue.
	obj, err := c.get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		c.forget(key)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get %s: %w", key, err)
	}
	now := c.cfg.Clock.Now()
	next := obj.DeepCopyObject()
	var requeue time.Duration
	switch o := next.(type) {
	case *v1.Service:
		if o.Metadata.DeletionTimestamp != nil {
			return reconcile.Result{}, nil
		}
		// The snapshot is grouped once per view change: this is the Service's own replicas, not
		// a copy of every replica in the cluster.
		replicas := c.snapshot().Replicas[key.Name]
		o.Status = FoldService(obj.(*v1.Service), replicas, c.cfg.SpecHash(obj.(*v1.Service)), now)
	case *v1.Node:
		var obs *observed.Node
		if n, ok := c.snapshot().Nodes[key.Name]; ok {
			obs = &n
			if n.Alive {
				requeue = c.cfg.LastSeenRefresh
			}
		}
		var role *v1.RaftRole
		if c.cfg.RaftRole != nil {
			if r, ok := c.cfg.RaftRole(key.Name); ok {
				role = &r
			}
		}
		o.Status = FoldNode(obj.(*v1.Node), obs, role, now, c.cfg.LastSeenRefresh)
	}
	if sameStatus(obj, next) {
		return reconcile.Result{RequeueAfter: requeue}, nil
	}
	if wait := c.debounce(key, now); wait > 0 {
		c.debounced.WithLabelValues(key.Kind).Inc()
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	if !c.cfg.IsLeader() {
		c.log.Debug("not the leader: status not written", "key", key)
		return reconcile.Result{}, nil
	}
	// next carries obj's resourceVersion: the write is a compare-and-swap.
	if _, err := c.cfg.Store.UpdateStatus(ctx, next); errors.Is(err, store.ErrConflict) {
		c.conflicts.Inc()
		return reconcile.Result{RequeueAfter: 20 * time.Millisecond}, nil
	} else if errors.Is(err, store.ErrNotFound) {
		return reconcile.Result{}, nil
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("update status of %s: %w", key, err)
	}
	c.writes.WithLabelValues(key.Kind).Inc()
	c.mu.Lock()
	c.lastWrite[key] = now
	c.mu.Unlock()
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// get reads the object of key: from the caches while Run runs, else a stale read of the store.
func (c *Controller) get(ctx context.Context, key v1.Key) (v1.Object, error) {
	c.mu.Lock()
	svcs, nodes := c.services, c.nodes
	c.mu.Unlock()
	var obj v1.Object
	var ok bool
	switch {
	case key.Kind == v1.KindService && svcs != nil:
		obj, ok = svcs.Get(key.Name)
	case key.Kind == v1.KindNode && nodes != nil:
		obj, ok = nodes.Get(key.Name)
	default:
		return c.cfg.Store.Get(ctx, key.Kind, key.Name, store.Stale())
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return obj, nil
}

// snapshot is the observed view Reconcile folds: the one of the last wake-up while Run runs,
// else the index's.
func (c *Controller) snapshot() *observed.Snapshot {
	c.mu.Lock()
	snap := c.snap
	c.mu.Unlock()
	if snap != nil {
		return snap
	}
	return c.index.Snapshot()
}

func (c *Controller) setRunState(svcs *ctrl.Cache[*v1.Service], nodes *ctrl.Cache[*v1.Node], snap *observed.Snapshot) {
	c.mu.Lock()
	c.services, c.nodes, c.snap = svcs, nodes, snap
	c.mu.Unlock()
}

// debounce returns how long to wait before key may be written again.
func (c *Controller) debounce(key v1.Key, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok := c.lastWrite[key]
	if !ok {
		return 0
	}
	if wait := last.Add(c.cfg.Debounce).Sub(now); wait > 0 {
		return wait
	}
	return 0
}

func (c *Controller) forget(key v1.Key) {
	c.mu.Lock()
	delete(c.lastWrite, key)
	c.mu.Unlock()
}

// sameStatus compares statuses as the store does: by their JSON.
func sameStatus(a, b v1.Object) bool {
	x, err1 := json.Marshal(v1.StatusOf(a))
	y, err2 := json.Marshal(v1.StatusOf(b))
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

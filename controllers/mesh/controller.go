package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/mesh/ipam"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is the part of store.Store the controller uses.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// Config configures a Controller.
type Config struct {
	// Store holds the Services. Required.
	Store Store
	// CIDR is --mesh.cidr, the range new addresses come from. Required.
	CIDR netip.Prefix
	// IsLeader is checked before every write. Nil: always true (the caller's leader context is
	// then the only fence).
	IsLeader func() bool
	// Clock times the age of the allocation snapshot, the loop's delays and the resync.
	// Default clock.RealClock{}.
	Clock clock.WithTicker
	// SnapshotMaxAge is how long a List of every Service's addresses is reused for further
	// allocations (with this controller's own writes laid over it). Default 1s.
	SnapshotMaxAge time.Duration
	// Resync enqueues every Service this often (a safety net: every input arrives by watch).
	// Default 5m.
	Resync time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the controller's metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *ctrl.Metrics
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("mesh: config: Store is required")
	}
	if !c.CIDR.IsValid() {
		return errors.New("mesh: config: CIDR is required (--mesh.cidr)")
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return true }
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.SnapshotMaxAge <= 0 {
		c.SnapshotMaxAge = time.Second
	}
	if c.Resync <= 0 {
		c.Resync = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Controller allocates virtual IPs. Reconcile(ctx, serviceName) handles one Service.
type Controller struct {
	cfg Config
	rng ipam.Range
	log *slog.Logger

	allocated prometheus.Counter
	outside   *prometheus.GaugeVec
	waiting   *prometheus.GaugeVec

	mu sync.Mutex
	// guarded by mu:
	cache   *ctrl.Cache[*v1.Service] // while Run runs; nil: read the store
	snap    map[string]ipam.Holder   // every Service's addresses, by name; nil: list again
	snapAt  time.Time
	starved map[string]bool   // Services waiting for free addresses
	outAt   map[string]string // the outside-CIDR report last logged per Service
}

var _ reconcile.TypedReconciler[string] = (*Controller)(nil)

// New returns a Controller.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rng, err := ipam.NewRange(cfg.CIDR)
	if err != nil {
		return nil, fmt.Errorf("mesh: --mesh.cidr: %w", err)
	}
	c := &Controller{cfg: cfg, rng: rng, log: cfg.Logger.With("controller", "mesh"),
		allocated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_mesh_addresses_allocated_total", Help: "Virtual IPs allocated to Services and replicas.",
		}),
		outside: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_mesh_addresses_outside_cidr",
			Help: "Virtual IPs a Service keeps outside the current --mesh.cidr (allocated under an earlier one), by service.",
		}, []string{"service"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_mesh_addresses_wanted",
			Help: "Virtual IPs a Service needs and cannot get because --mesh.cidr is exhausted, by service.",
		}, []string{"service"}),
		starved: map[string]bool{}, outAt: map[string]string{},
	}
	if cfg.Registerer != nil {
		for _, col := range []prometheus.Collector{c.allocated, c.outside, c.waiting} {
			if err := cfg.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("mesh: register metrics: %w", err)
			}
		}
	}
	return c, nil
}

// indexAddress indexes Services by every address they hold.
const indexAddress = "address"

func heldAddresses(svc *v1.Service) []string {
	var out []string
	if svc.Status.VirtualIP != "" {
		out = append(out, svc.Status.VirtualIP)
	}
	for _, r := range svc.Status.ReplicaVirtualIPs {
		out = append(out, r.IP)
	}
	return out
}

// Run allocates until ctx ends. Call it with the leader context of the controller Lease; it may
// be called again after a later election.
func (c *Controller) Run(ctx context.Context) {
	loop := ctrl.New[string]("mesh", c, ctrl.Options{Logger: c.cfg.Logger, Metrics: c.cfg.LoopMetrics, Clock: c.cfg.Clock})
	var svcs *ctrl.Cache[*v1.Service]
	all := func() {
		for _, name := range svcs.Names() {
			loop.Enqueue(name)
		}
	}
	svcs = ctrl.NewCache(c.cfg.Store, v1.KindService, ctrl.CacheConfig[*v1.Service]{
		Logger:  c.log,
		Indexes: map[string]ctrl.IndexFunc[*v1.Service]{indexAddress: heldAddresses},
		Handler: ctrl.Handler[*v1.Service]{
			OnAdd: func(o *v1.Service) { loop.Enqueue(o.Metadata.Name) },
			OnUpdate: func(old, o *v1.Service) {
				if old.Metadata.ResourceVersion != o.Metadata.ResourceVersion {
					loop.Enqueue(o.Metadata.Name)
				}
			},
			OnDelete: func(o *v1.Service) {
				loop.Enqueue(o.Metadata.Name)
				// Its addresses are free: a Service waiting for some may get them now, and one
				// that shared an address with it may keep it.
				c.mu.Lock()
				c.snap = nil
				for name := range c.starved {
					loop.Enqueue(name)
				}
				c.mu.Unlock()
				for _, a := range heldAddresses(o) {
					for _, name := range svcs.Indexed(indexAddress, a) {
						loop.Enqueue(name)
					}
				}
			},
		},
	})
	sets := ctrl.NewCache(c.cfg.Store, v1.KindReplicaSet, ctrl.CacheConfig[*v1.ReplicaSet]{
		Logger: c.log,
		Handler: ctrl.Handler[*v1.ReplicaSet]{
			OnAdd: func(o *v1.ReplicaSet) { loop.Enqueue(rsKeyPrefix + o.Metadata.Name) },
			OnUpdate: func(old, o *v1.ReplicaSet) {
				if o.Status.VirtualIP == "" || old.Status.VirtualIP != o.Status.VirtualIP {
					loop.Enqueue(rsKeyPrefix + o.Metadata.Name)
				}
			},
			OnDelete: func(o *v1.ReplicaSet) {
				c.mu.Lock()
				c.snap = nil // its address is free
				for name := range c.starved {
					loop.Enqueue(name)
				}
				c.mu.Unlock()
				loop.Enqueue(rsKeyPrefix + o.Metadata.Name)
			},
		},
	})
	go svcs.Run(ctx)
	go sets.Run(ctx)
	if !ctrl.WaitForSync(ctx, svcs, sets) {
		return
	}
	c.mu.Lock()
	c.cache, c.snap = svcs, nil // a new term lists afresh
	c.mu.Unlock()
	defer func() {
		// Out of office: what this term reported is no longer this node's to report.
		c.mu.Lock()
		c.cache, c.snap = nil, nil
		c.starved, c.outAt = map[string]bool{}, map[string]string{}
		c.outside.Reset()
		c.waiting.Reset()
		c.mu.Unlock()
	}()
	go func() {
		t := c.cfg.Clock.NewTicker(c.cfg.Resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				all()
			}
		}
	}()
	loop.Run(ctx)
}

// wantReplicas is how many replica indices need an address.
func wantReplicas(svc *v1.Service) int32 {
	n := svc.DesiredReplicas()
	return max(0, min(n, v1.MaxReplicas))
}

// complete reports whether svc holds everything it needs and nothing another Service (in the
// cache) also holds.
func (c *Controller) complete(svc *v1.Service, cache *ctrl.Cache[*v1.Service]) bool {
	held, bad := ipam.FromStatus(&svc.Status)
	if len(bad) > 0 || !held.Service.IsValid() {
		return false
	}
	for i := range wantReplicas(svc) {
		if _, ok := held.Replicas[i]; !ok {
			return false
		}
	}
	if cache == nil {
		return false
	}
	seen := map[netip.Addr]bool{}
	for _, a := range held.All() {
		if seen[a] {
			return false // held twice by svc: let Allocate keep one
		}
		seen[a] = true
		if names := cache.Indexed(indexAddress, a.String()); len(names) != 1 || names[0] != svc.Metadata.Name {
			return false // shared with another Service: let Allocate decide who keeps it
		}
	}
	return true
}

// Reconcile makes sure one Service holds its addresses.
func (c *Controller) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	if strings.HasPrefix(name, rsKeyPrefix) {
		return c.reconcileReplicaSet(ctx, name) // replicasets.go
	}
	c.mu.Lock()
	cache := c.cache
	c.mu.Unlock()
	var svc *v1.Service
	if cache != nil {
		o, ok := cache.Get(name)
		if !ok {
			c.forget(name)
			return reconcile.Result{}, nil
		}
		svc = o // shared: read-only
	}
	if svc != nil && svc.Metadata.DeletionTimestamp != nil {
		return reconcile.Result{}, nil // its addresses stay held until it is gone
	}
	if svc != nil && c.complete(svc, cache) {
		held, _ := ipam.FromStatus(&svc.Status)
		c.reportOutside(svc.Metadata.Name, held)
		return reconcile.Result{}, nil
	}
	return c.allocate(ctx, name)
}

// allocate reads the Service and every other Service's addresses afresh, and writes what the
// allocator answers. One allocation at a time: the mutex is what makes the table true.
func (c *Controller) allocate(ctx context.Context, name string) (reconcile.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, err := c.cfg.Store.Get(ctx, v1.KindService, name)
	if errors.Is(err, store.ErrNotFound) {
		c.forgetLocked(name)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get services/%s: %w", name, err)
	}
	svc := o.(*v1.Service)
	if svc.Metadata.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	if err := c.snapshotLocked(ctx); err != nil {
		return reconcile.Result{}, err
	}
	h := holder(svc)
	for _, b := range h.bad {
		c.log.Warn("unreadable virtual IP in status: replaced", "service", name, "field", b)
	}
	others := make([]ipam.Holder, 0, len(c.snap))
	for n, oh := range c.snap {
		if n != name {
			others = append(others, oh)
		}
	}
	res, err := ipam.NewTable(others).Allocate(c.rng, h.Holder, wantReplicas(svc))
	if errors.Is(err, ipam.ErrExhausted) {
		if !c.starved[name] {
			c.log.Error("cannot allocate virtual IPs", "service", name, "err", err)
		}
		c.starved[name] = true
		c.waiting.WithLabelValues(name).Set(float64(1 + int(wantReplicas(svc)) - h.Held.Count()))
		c.snap = nil // the next try lists again: something may have been freed meanwhile
		// Deleting a Service enqueues this one again; the resync is the safety net.
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("services/%s: %w", name, err)
	}
	if c.starved[name] {
		delete(c.starved, name)
		c.waiting.DeleteLabelValues(name)
	}
	for _, d := range res.Dropped {
		c.log.Warn("virtual IP held by an older Service too: renumbered", "service", name,
			"index", d.Index, "address", d.Addr, "keptBy", d.HeldBy)
	}
	c.reportOutsideLocked(name, res.Addresses)
	if res.Addresses.Equal(h.Held) && len(h.bad) == 0 {
		c.snap[name] = h.Holder
		return reconcile.Result{}, nil
	}
	if !c.cfg.IsLeader() {
		return reconcile.Result{}, nil
	}
	next := svc.DeepCopyObject().(*v1.Service)
	ipam.ToStatus(res.Addresses, &next.Status)
	// next carries svc's resourceVersion: compare-and-swap, so nobody's status is clobbered.
	out, err := c.cfg.Store.UpdateStatus(ctx, next)
	switch {
	case errors.Is(err, store.ErrConflict):
		return reconcile.Result{RequeueAfter: 20 * time.Millisecond}, nil
	case errors.Is(err, store.ErrNotFound):
		c.forgetLocked(name)
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("update status of services/%s: %w", name, err)
	}
	c.allocated.Add(float64(res.Allocated))
	c.snap[name] = holder(out.(*v1.Service)).Holder
	if res.Allocated > 0 {
		c.log.Info("virtual IPs allocated", "service", name, "virtualIP", res.Addresses.Service,
			"replicas", len(res.Addresses.Replicas), "new", res.Allocated)
	}
	return reconcile.Result{}, nil
}

type readHolder struct {
	ipam.Holder
	bad []string
}

func holder(svc *v1.Service) readHolder {
	held, bad := ipam.FromStatus(&svc.Status)
	h := ipam.Holder{Name: svc.Metadata.Name, UID: svc.Metadata.UID, Held: held}
	if t := svc.Metadata.CreationTimestamp; t != nil {
		h.Created = *t
	}
	return readHolder{h, bad}
}

// snapshotLocked lists every Service's addresses unless the last list is recent enough.
func (c *Controller) snapshotLocked(ctx context.Context) error {
	now := c.cfg.Clock.Now()
	if c.snap != nil && now.Sub(c.snapAt) < c.cfg.SnapshotMaxAge {
		return nil
	}
	objs, _, err := c.cfg.Store.List(ctx, v1.KindService, v1.Selector{}) // linearizable
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	snap := make(map[string]ipam.Holder, len(objs))
	for _, o := range objs {
		h := holder(o.(*v1.Service))
		snap[h.Name] = h.Holder
	}
	if err := c.listReplicaSetHolders(ctx, snap); err != nil {
		return err
	}
	c.snap, c.snapAt = snap, now
	return nil
}

// reportOutside logs (once per change) and exports the addresses a Service keeps outside the
// current CIDR: they were allocated under an earlier --mesh.cidr and are not renumbered.
func (c *Controller) reportOutside(name string, held ipam.Addresses) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reportOutsideLocked(name, held)
}

func (c *Controller) reportOutsideLocked(name string, held ipam.Addresses) {
	var out []string
	for _, a := range held.All() {
		if !c.rng.Contains(a) {
			out = append(out, a.String())
		}
	}
	sort.Strings(out)
	report := strings.Join(out, ",")
	if report == c.outAt[name] {
		return
	}
	if report == "" {
		delete(c.outAt, name)
		c.outside.DeleteLabelValues(name)
		return
	}
	c.outAt[name] = report
	c.outside.WithLabelValues(name).Set(float64(len(out)))
	c.log.Warn("virtual IPs outside --mesh.cidr are kept (a Service is never renumbered while it exists; delete and re-create it to move it)",
		"service", name, "addresses", report, "cidr", c.rng.Prefix())
}

func (c *Controller) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(name)
}

func (c *Controller) forgetLocked(name string) {
	if c.snap != nil {
		delete(c.snap, name)
	}
	delete(c.starved, name)
	delete(c.outAt, name)
	c.waiting.DeleteLabelValues(name)
	c.outside.DeleteLabelValues(name)
}

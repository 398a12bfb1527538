package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/replicaset"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is the part of store.Store the controller uses.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Create(ctx context.Context, obj v1.Object) (v1.Object, error)
	Update(ctx context.Context, obj v1.Object) (v1.Object, error)
	UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error)
	Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// EngineFactory builds the engine of one ReplicaSet (each engine package's NewEngine).
type EngineFactory func(replicaset.Options) (replicaset.Engine, error)

// Config configures a Controller.
type Config struct {
	// Store holds ReplicaSets, Services, Nodes and Secrets. Required.
	Store Store
	// Engines by spec.engine. A ReplicaSet whose engine is missing gets Ready False
	// (EngineUnavailable). Required (may be empty).
	Engines map[v1.Engine]EngineFactory
	// IsLeader is checked before every write. Nil: always true.
	IsLeader func() bool
	// Clock is read for status times and the offset write interval. Default clock.RealClock{}.
	Clock clock.PassiveClock
	// Dial is handed to engines to reach members (their virtual IPs). Nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MemberHost names replica i of svc for the database (REPLICAOF, announce, MONITOR).
	// Default the per-replica mesh name "<svc>-<i>.<svc>"; benchmarks on local processes set
	// loopback addresses.
	MemberHost func(svc string, i int) string
	// Poll is how often a ReplicaSet is reconciled without any event (health, offsets,
	// Sentinel's view). Default 2s.
	Poll time.Duration
	// OffsetInterval is how often a status whose only change is the members' offsets is
	// written (offsets move with every write; status goes through raft). Default 30s.
	OffsetInterval time.Duration
	// Timeout bounds one engine reconcile. Default 10s.
	Timeout time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the controller's metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *ctrl.Metrics
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("replicaset: config: Store is required")
	}
	if c.Engines == nil {
		c.Engines = map[v1.Engine]EngineFactory{}
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return true }
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	if c.OffsetInterval <= 0 {
		c.OffsetInterval = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Controller converges ReplicaSets. Reconcile(ctx, name) handles one.
type Controller struct {
	cfg Config
	log *slog.Logger

	primaryChanges *prometheus.CounterVec
	agreed         *prometheus.GaugeVec

	mu sync.Mutex
	// guarded by mu:
	engines   map[string]*engineEntry
	rsCache   *ctrl.Cache[*v1.ReplicaSet]
	svcCache  *ctrl.Cache[*v1.Service]
	nodeCache *ctrl.Cache[*v1.Node]
	loop      *ctrl.Loop[string]
}

type engineEntry struct {
	engine    replicaset.Engine
	uid       string
	kind      v1.Engine
	lastWrite time.Time
}

var _ reconcile.TypedReconciler[string] = (*Controller)(nil)

// New returns a Controller.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, log: cfg.Logger.With("controller", "replicaset"), engines: map[string]*engineEntry{},
		primaryChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_replicaset_primary_changes_total", Help: "Changes of status.primary, by replica set.",
		}, []string{"replicaset"}),
		agreed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_replicaset_primary_agreed", Help: "1 while the replica set's primary is agreed (routable), by replica set.",
		}, []string{"replicaset"}),
	}
	if cfg.Registerer != nil {
		for _, col := range []prometheus.Collector{c.primaryChanges, c.agreed} {
			if err := cfg.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("replicaset: register metrics: %w", err)
			}
		}
	}
	return c, nil
}

// references reports whether rs names svc as a member or its sentinel Service.
func references(rs *v1.ReplicaSet, svc string) bool {
	for _, m := range rs.Spec.Members {
		if m == svc {
			return true
		}
	}
	return rs.Spec.Redis != nil && rs.Spec.Redis.Sentinel == svc
}

// Run reconciles until ctx ends. Call it with the leader context of the controller Lease; it
// may be called again after a later election.
func (c *Controller) Run(ctx context.Context) {
	loop := ctrl.New[string]("replicaset", c, ctrl.Options{Logger: c.cfg.Logger, Metrics: c.cfg.LoopMetrics})
	var rss *ctrl.Cache[*v1.ReplicaSet]
	all := func() {
		for _, n := range rss.Names() {
			loop.Enqueue(n)
		}
	}
	rss = ctrl.NewCache(c.cfg.Store, v1.KindReplicaSet, ctrl.CacheConfig[*v1.ReplicaSet]{Logger: c.log,
		Handler: ctrl.Handler[*v1.ReplicaSet]{
			OnAdd:    func(o *v1.ReplicaSet) { loop.Enqueue(o.Metadata.Name) },
			OnUpdate: func(_, o *v1.ReplicaSet) { loop.Enqueue(o.Metadata.Name) },
			OnDelete: func(o *v1.ReplicaSet) { loop.Enqueue(o.Metadata.Name) },
		}})
	onSvc := func(o *v1.Service) {
		for _, rs := range rss.List() {
			if references(rs, o.Metadata.Name) || ownedBy(&o.Metadata, rs) {
				loop.Enqueue(rs.Metadata.Name)
			}
		}
	}
	svcs := ctrl.NewCache(c.cfg.Store, v1.KindService, ctrl.CacheConfig[*v1.Service]{Logger: c.log,
		Handler: ctrl.Handler[*v1.Service]{OnAdd: onSvc, OnUpdate: func(_, o *v1.Service) { onSvc(o) }, OnDelete: onSvc}})
	nodes := ctrl.NewCache(c.cfg.Store, v1.KindNode, ctrl.CacheConfig[*v1.Node]{Logger: c.log,
		Handler: ctrl.Handler[*v1.Node]{
			OnAdd: func(*v1.Node) { all() },
			OnUpdate: func(old, o *v1.Node) {
				if old.Spec.Unschedulable != o.Spec.Unschedulable || old.Spec.Drain != o.Spec.Drain {
					all()
				}
			},
			OnDelete: func(*v1.Node) { all() },
		}})
	go rss.Run(ctx)
	go svcs.Run(ctx)
	go nodes.Run(ctx)
	if !ctrl.WaitForSync(ctx, rss, svcs, nodes) {
		return
	}
	c.mu.Lock()
	c.rsCache, c.svcCache, c.nodeCache, c.loop = rss, svcs, nodes, loop
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.rsCache, c.svcCache, c.nodeCache, c.loop = nil, nil, nil, nil
		for name, e := range c.engines {
			_ = e.engine.Close()
			delete(c.engines, name)
		}
		c.agreed.Reset()
	}()
	all()
	loop.Run(ctx)
}

func (c *Controller) caches() (*ctrl.Cache[*v1.ReplicaSet], *ctrl.Cache[*v1.Service], *ctrl.Cache[*v1.Node], *ctrl.Loop[string]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rsCache, c.svcCache, c.nodeCache, c.loop
}

func (c *Controller) dropEngine(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.engines[name]; ok {
		_ = e.engine.Close()
		delete(c.engines, name)
	}
	c.agreed.DeleteLabelValues(name)
}

// engineFor returns the ReplicaSet's engine, building it on first use (or when the object was
// re-created or its engine changed).
func (c *Controller) engineFor(rs *v1.ReplicaSet) (*engineEntry, error) {
	name := rs.Metadata.Name
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.engines[name]; ok {
		if e.uid == rs.Metadata.UID && e.kind == rs.Spec.Engine {
			return e, nil
		}
		_ = e.engine.Close()
		delete(c.engines, name)
	}
	f := c.cfg.Engines[rs.Spec.Engine]
	if f == nil {
		return nil, errEngineUnavailable
	}
	loop := c.loop
	eng, err := f(replicaset.Options{Name: name, Logger: c.cfg.Logger, Dial: c.cfg.Dial, Changed: func() {
		if loop != nil {
			loop.Enqueue(name)
		}
	}})
	if err != nil {
		return nil, fmt.Errorf("replicasets/%s: spec.engine %q: %w", name, rs.Spec.Engine, err)
	}
	e := &engineEntry{engine: eng, uid: rs.Metadata.UID, kind: rs.Spec.Engine}
	c.engines[name] = e
	return e, nil
}

var errEngineUnavailable = errors.New("engine not available in this agent")

// Reconcile converges one ReplicaSet: its sentinel Service (redis), then one engine step, then
// status.
func (c *Controller) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	rss, svcs, nodes, _ := c.caches()
	if rss == nil {
		return reconcile.Result{}, nil
	}
	rs, ok := rss.Get(name)
	if !ok {
		c.dropEngine(name)
		return reconcile.Result{}, c.cleanupOwned(ctx, svcs, name)
	}
	if rs.Metadata.DeletionTimestamp != nil {
		c.dropEngine(name)
		return reconcile.Result{}, nil
	}
	if errs := rs.DeepCopyObject().(*v1.ReplicaSet).Validate(); len(errs) > 0 {
		return c.writeConditions(ctx, rs, condition(v1.ReplicaSetReady, false, "InvalidSpec", errs.ToAggregate("replicasets", name).Error()))
	}
	e, err := c.engineFor(rs)
	if errors.Is(err, errEngineUnavailable) {
		return c.writeConditions(ctx, rs, condition(v1.ReplicaSetReady, false, "EngineUnavailable",
			fmt.Sprintf("spec.engine %q: %v", rs.Spec.Engine, err)))
	}
	if err != nil {
		return reconcile.Result{}, err
	}

	draining := map[string]bool{}
	nodeCount := 0
	for _, n := range nodes.List() {
		nodeCount++
		if n.Spec.Unschedulable || n.Spec.Drain {
			draining[n.Metadata.Name] = true
		}
	}
	var members []replicaset.Member
	var firstImage string
	for _, m := range rs.Spec.Members {
		svc, ok := svcs.Get(m)
		if !ok {
			return c.writeConditions(ctx, rs, condition(v1.ReplicaSetReady, false, "MemberServiceMissing",
				fmt.Sprintf("spec.members: Service %q does not exist", m)))
		}
		if firstImage == "" {
			firstImage = svc.Spec.Image
		}
		members = append(members, buildMembers(svc, 0, draining, c.cfg.MemberHost)...)
	}
	d := replicaset.Desired{ReplicaSet: rs, Members: members, LastPrimary: rs.Status.Primary, Now: c.cfg.Clock.Now(), Secrets: map[string]string{}}

	if rs.Spec.Engine == v1.EngineRedis {
		sent, res, done, err := c.ensureSentinel(ctx, rs, svcs, firstImage, nodeCount)
		if done || err != nil {
			return res, err
		}
		d.Sentinels = buildMembers(sent, rs.Spec.Redis.EffectiveSentinelPort(), nil, c.cfg.MemberHost)
		if ps := rs.Spec.Redis.PasswordSecret; ps != nil {
			val, err := c.secretValue(ctx, ps)
			if err != nil {
				return c.writeConditions(ctx, rs, condition(v1.ReplicaSetReady, false, "SecretUnavailable",
					fmt.Sprintf("spec.redis.passwordSecret: %v", err)))
			}
			d.Secrets["password"] = val
		}
	}

	ectx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	obs, engErr := e.engine.Reconcile(ectx, d)
	cancel()
	if engErr != nil {
		c.log.Warn("replica set step failed", "replicaset", name, "err", engErr)
	}
	if ctx.Err() != nil {
		return reconcile.Result{}, nil
	}
	obs.Conditions = withAgreedCondition(obs, d.Now)
	if obs.PrimaryAgreed {
		c.agreed.WithLabelValues(name).Set(1)
	} else {
		c.agreed.WithLabelValues(name).Set(0)
	}
	res, err := c.writeStatus(ctx, rs, e, obs)
	if err != nil {
		return res, err
	}
	if res.RequeueAfter == 0 {
		res.RequeueAfter = c.cfg.Poll
	}
	return res, nil
}

// ensureSentinel creates or updates the sentinel Service the ReplicaSet owns. done reports
// that the reconcile stops here (a write happened and its watch event comes back, or the name
// is taken by a Service the ReplicaSet does not own).
func (c *Controller) ensureSentinel(ctx context.Context, rs *v1.ReplicaSet, svcs *ctrl.Cache[*v1.Service], image string, nodes int) (*v1.Service, reconcile.Result, bool, error) {
	name := rs.Spec.Redis.Sentinel
	want := sentinelSpec(rs, image, nodes)
	have, ok := svcs.Get(name)
	if ok && !ownedBy(&have.Metadata, rs) {
		res, err := c.writeConditions(ctx, rs, condition(v1.ReplicaSetReady, false, "SentinelServiceNotOwned",
			fmt.Sprintf("spec.redis.sentinel: Service %q exists and is not owned by replicasets/%s", name, rs.Metadata.Name)))
		return nil, res, true, err
	}
	if ok && !sentinelDiffers(have.Spec, want) {
		return have, reconcile.Result{}, false, nil
	}
	if !c.cfg.IsLeader() {
		return nil, reconcile.Result{}, true, nil
	}
	if !ok {
		svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
			Metadata: v1.ObjectMeta{Name: name, Labels: map[string]string{LabelReplicaSet: rs.Metadata.Name},
				OwnerReferences: []v1.OwnerReference{{Kind: ownerKind, Name: rs.Metadata.Name, UID: rs.Metadata.UID}}},
			Spec: want}
		_, err := c.cfg.Store.Create(ctx, svc)
		if errors.Is(err, store.ErrAlreadyExists) {
			return nil, reconcile.Result{RequeueAfter: 100 * time.Millisecond}, true, nil
		}
		if err != nil {
			return nil, reconcile.Result{}, true, fmt.Errorf("replicasets/%s: create sentinel services/%s: %w", rs.Metadata.Name, name, err)
		}
		c.log.Info("sentinel Service created", "replicaset", rs.Metadata.Name, "service", name, "replicas", *want.Replicas)
		return nil, reconcile.Result{RequeueAfter: 100 * time.Millisecond}, true, nil
	}
	cp := have.DeepCopyObject().(*v1.Service)
	cp.Spec.Image, cp.Spec.Command, cp.Spec.Args = want.Image, want.Command, want.Args
	cp.Spec.Replicas, cp.Spec.Ports = want.Replicas, want.Ports
	if cp.Spec.Placement == nil {
		cp.Spec.Placement = &v1.Placement{}
	}
	cp.Spec.Placement.MaxPerNode = 1
	if cp.Spec.HealthCheck == nil {
		cp.Spec.HealthCheck = want.HealthCheck
	}
	_, err := c.cfg.Store.Update(ctx, cp)
	if errors.Is(err, store.ErrConflict) {
		return nil, reconcile.Result{RequeueAfter: 20 * time.Millisecond}, true, nil
	}
	if err != nil {
		return nil, reconcile.Result{}, true, fmt.Errorf("replicasets/%s: update sentinel services/%s: %w", rs.Metadata.Name, name, err)
	}
	c.log.Info("sentinel Service updated", "replicaset", rs.Metadata.Name, "service", name, "replicas", *want.Replicas)
	return nil, reconcile.Result{RequeueAfter: 100 * time.Millisecond}, true, nil
}

// cleanupOwned deletes the Services a deleted ReplicaSet owned.
func (c *Controller) cleanupOwned(ctx context.Context, svcs *ctrl.Cache[*v1.Service], rsName string) error {
	if svcs == nil || !c.cfg.IsLeader() {
		return nil
	}
	for _, s := range svcs.List() {
		if s.Metadata.Labels[LabelReplicaSet] != rsName {
			continue
		}
		owned := false
		for _, r := range s.Metadata.OwnerReferences {
			owned = owned || (r.Kind == ownerKind && r.Name == rsName)
		}
		if !owned {
			continue
		}
		if _, err := c.cfg.Store.Delete(ctx, v1.KindService, s.Metadata.Name, s.Metadata.ResourceVersion); err != nil &&
			!errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("delete services/%s owned by replicasets/%s: %w", s.Metadata.Name, rsName, err)
		}
		c.log.Info("sentinel Service deleted with its replica set", "replicaset", rsName, "service", s.Metadata.Name)
	}
	return nil
}

// secretValue reads one key of a Secret (never logged).
func (c *Controller) secretValue(ctx context.Context, ref *v1.SecretKeyRef) (string, error) {
	o, err := c.cfg.Store.Get(ctx, v1.KindSecret, ref.Name, store.Stale())
	if err != nil {
		return "", fmt.Errorf("secrets/%s: %w", ref.Name, err)
	}
	sec := o.(*v1.Secret)
	key := ref.Key
	if key == "" {
		key = v1.DefaultRedisPasswordKey
	}
	v, ok := sec.Spec.Data[key]
	if !ok {
		return "", fmt.Errorf("secrets/%s has no key %q", ref.Name, key)
	}
	return v, nil
}

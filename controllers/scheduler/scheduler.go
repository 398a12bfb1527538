package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is the part of store.Store the scheduler uses.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// Config configures a Scheduler.
type Config struct {
	// Store holds Services and Nodes. Required.
	Store Store
	// SecretDigestKey keys the digests of Secret values that revision hashes carry (so that a
	// label or a status shows nothing about a value). Every scheduler of a cluster must use the
	// same key (the agent derives it from the peer secret), or a failover rolls Services that
	// read Secrets. Default: a fixed key, for tests.
	SecretDigestKey []byte
	// View is the observed state (node liveness, replica health). Nil: nodes are healthy when
	// their Node object is Ready, and no replica is ever ready.
	View observed.View
	// IsLeader is checked before every write. Nil: always true (the caller's leader context is
	// then the only fence).
	IsLeader func() bool
	// Clock is the time plans are computed at (waiting replicas, the progress deadline,
	// revision timestamps). Default clock.RealClock{}.
	Clock clock.PassiveClock
	// Health holds the node-health timings (the restart grace). Zero fields take nodehealth's
	// defaults (RestartGrace: nodehealth.DefaultRestartGrace).
	Health nodehealth.Policy
	// ProgressDeadline: a rollout that makes no progress for this long fails. Default 5m.
	ProgressDeadline time.Duration
	// RevisionHistoryLimit is how many revisions before the current one each Service keeps in
	// status.revisionHistory (ctl rollout history, undo --to-revision). Default 10.
	RevisionHistoryLimit int
	// Resync enqueues every Service this often. Every input of a plan arrives as an event (the
	// store's watch through the caches, the view through observed.OnChange), so this is only a
	// safety net; a pass over 1000 Services costs about a quarter of a CPU-second. Default 5m.
	Resync time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the scheduler's metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *ctrl.Metrics
	// Events receives Scheduled, Moved and FailedScheduling Events (events.go). Nil: none.
	Events *events.Recorder
}

// DefaultConfig returns the defaults for st.
func DefaultConfig(st Store) Config {
	return Config{Store: st, Clock: clock.RealClock{}, ProgressDeadline: 5 * time.Minute, Resync: 5 * time.Minute}
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("scheduler: config: Store is required")
	}
	d := DefaultConfig(c.Store)
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.ProgressDeadline <= 0 {
		c.ProgressDeadline = d.ProgressDeadline
	}
	if c.Resync <= 0 {
		c.Resync = d.Resync
	}
	if c.RevisionHistoryLimit <= 0 {
		c.RevisionHistoryLimit = DefaultRevisionHistoryLimit
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return true }
	}
	return nil
}

// ErrNotLeader is returned by Reconcile when the scheduler lost the controller Lease.
var ErrNotLeader = errors.New("scheduler: not the leader")

// Scheduler is the reconciler. Reconcile(ctx, serviceName) plans one Service.
type Scheduler struct {
	cfg      Config
	log      *slog.Logger
	index    *observed.Index // nil without a View
	unplaced *prometheus.GaugeVec
	writes   prometheus.Counter
	brake    prometheus.Gauge
	braked   atomic.Bool // the brake held at the last reconcile (for logging transitions)
	avoid    avoidance   // nodes where a gateway's egress healing gave up

	mu sync.Mutex
	// guarded by mu:
	rd   reader             // the caches while Run runs; nil: the store
	snap *observed.Snapshot // the view as of the last view-change wake-up while Run runs; nil: ask index
}

var _ reconcile.TypedReconciler[string] = (*Scheduler)(nil)

// New returns a Scheduler.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger.With("controller", "scheduler"),
		unplaced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_scheduler_unplaced_replicas", Help: "Replicas the scheduler could not place, by service.",
		}, []string{"service"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_scheduler_assignment_writes_total", Help: "Status writes of new placements.",
		}),
		brake: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "constellation_scheduler_disruption_brake",
			Help: "1 while more than half of the nodes look lost at once and the scheduler re-places nothing.",
		}),
	}
	if cfg.View != nil {
		s.index = observed.NewIndex(cfg.View)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.unplaced); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
		if err := cfg.Registerer.Register(s.writes); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
		if err := cfg.Registerer.Register(s.brake); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
	}
	return s, nil
}

// Run schedules until ctx ends. Call it with the leader context of the controller Lease; it may
// be called again after a later election.
//
// While it runs, Reconcile reads Nodes and the other Services' load from informer caches kept
// by the store's watch (see ctrl.Cache), and observed state from an observed.Index, so a
// reconcile costs O(nodes + its own replicas) whatever the number of Services. Wake-ups:
// a Service's own change; a Node change that can move placement (spec, labels, conditions;
// not the lastSeen heartbeat) enqueues every Service; a view change enqueues the Services whose
// observed replicas changed, or every Service when a node's observed state changed; a resync
// every Config.Resync. No timer polls an incomplete plan: see Reconcile.
func (s *Scheduler) Run(ctx context.Context) {
	loop := ctrl.New[string]("scheduler", s, ctrl.Options{Logger: s.cfg.Logger, Metrics: s.cfg.LoopMetrics})
	var svcs *ctrl.Cache[*v1.Service]
	all := func() {
		for _, name := range svcs.Names() {
			loop.Enqueue(name)
		}
	}
	// Services sharing a namespace follow their owner (placement and readiness).
	dependents := func(owner string) {
		for _, name := range svcs.Indexed(indexNetworkOwner, owner) {
			loop.Enqueue(name)
		}
	}
	svcs = ctrl.NewCache(s.cfg.Store, v1.KindService, ctrl.CacheConfig[*v1.Service]{
		Logger: s.log,
		Indexes: map[string]ctrl.IndexFunc[*v1.Service]{indexAssignedNode: assignedNodes, indexRollingSecret: rollingSecrets, indexNetworkOwner: networkOwners, indexFileConfig: fileConfigs,
			indexHostPort: hostPortKeys, indexDependsOn: dependsOnNames},
		Handler: ctrl.Handler[*v1.Service]{
			OnAdd: func(o *v1.Service) { loop.Enqueue(o.Metadata.Name) },
			OnUpdate: func(old, o *v1.Service) {
				if old.Metadata.ResourceVersion != o.Metadata.ResourceVersion {
					loop.Enqueue(o.Metadata.Name)
					dependents(o.Metadata.Name)
					for _, n := range stackWakeups(svcs.Indexed, old, o) {
						loop.Enqueue(n)
					}
				}
			},
			OnDelete: func(o *v1.Service) {
				loop.Enqueue(o.Metadata.Name)
				dependents(o.Metadata.Name)
				for _, n := range stackWakeups(svcs.Indexed, nil, o) {
					loop.Enqueue(n)
				}
			},
		},
	})
	nodes := ctrl.NewCache(s.cfg.Store, v1.KindNode, ctrl.CacheConfig[*v1.Node]{
		Logger: s.log,
		Handler: ctrl.Handler[*v1.Node]{
			OnAdd: func(*v1.Node) { all() },
			OnUpdate: func(old, n *v1.Node) {
				if placementChanged(old, n) {
					all()
				}
			},
			OnDelete: func(*v1.Node) { all() },
		},
	})
	// A Secret change is a new revision of the Services that roll with it (revisionHash).
	referrers := func(sec *v1.Secret) {
		for _, name := range svcs.Indexed(indexRollingSecret, sec.Metadata.Name) {
			loop.Enqueue(name)
		}
	}
	secrets := ctrl.NewCache(secretVersions(s.cfg.Store, s.cfg.secretDigestKey()), v1.KindSecret, ctrl.CacheConfig[*v1.Secret]{
		Logger: s.log,
		Handler: ctrl.Handler[*v1.Secret]{
			OnAdd: referrers,
			OnUpdate: func(old, sec *v1.Secret) {
				if old.Metadata.ResourceVersion != sec.Metadata.ResourceVersion {
					referrers(sec)
				}
			},
			OnDelete: referrers,
		},
	})
	// A Config change is a new revision of the Services whose spec.files read it.
	configReferrers := func(c *v1.Config) {
		for _, name := range svcs.Indexed(indexFileConfig, c.Metadata.Name) {
			loop.Enqueue(name)
		}
	}
	configs := ctrl.NewCache(configDigests(s.cfg.Store), v1.KindConfig, ctrl.CacheConfig[*v1.Config]{
		Logger: s.log,
		Handler: ctrl.Handler[*v1.Config]{
			OnAdd: configReferrers,
			OnUpdate: func(old, c *v1.Config) {
				if old.Metadata.ResourceVersion != c.Metadata.ResourceVersion {
					configReferrers(c)
				}
			},
			OnDelete: configReferrers,
		},
	})
	go svcs.Run(ctx)
	go nodes.Run(ctx)
	go secrets.Run(ctx)
	go configs.Run(ctx)
	if !ctrl.WaitForSync(ctx, svcs, nodes, secrets, configs) {
		return
	}
	s.setReader(cacheReader{services: svcs, nodes: nodes, secrets: secrets, configs: configs})
	defer func() { s.setReader(nil); s.setSnapshot(nil) }()

	if s.index != nil {
		var last *observed.Snapshot
		go observed.OnChange(ctx, nil, s.cfg.View, viewCoalesce, func() {
			snap := s.index.Snapshot()
			changed, nodesChanged := snap.Diff(last)
			last = snap
			// Reconciles read this snapshot until the next wake-up: one copy of the view per
			// (coalesced) change, not one per reconcile while the view keeps changing. A
			// reconcile that reads it just before a change is enqueued again by that change.
			s.setSnapshot(snap)
			if len(nodesChanged) > 0 {
				// Liveness or labels of a node: any Service may move.
				all()
				return
			}
			for _, name := range changed {
				loop.Enqueue(name)
				dependents(name)
			}
		})
	}
	go func() {
		t := time.NewTicker(s.cfg.Resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				all()
			}
		}
	}()
	loop.Run(ctx)
}

// viewCoalesce is how long view changes are folded into one wake-up (observed.OnChange).
const viewCoalesce = 50 * time.Millisecond

// indexAssignedNode indexes Services by the node of each assignment, counted: the load per node.
const indexAssignedNode = "assignedNode"

// indexRollingSecret indexes Services by the Secrets whose changes roll them.
const indexRollingSecret = "rollingSecret"

func rollingSecrets(svc *v1.Service) []string {
	names, _ := spechash.RollingSecrets(&svc.Spec)
	return names
}

func assignedNodes(svc *v1.Service) []string {
	out := make([]string, 0, len(svc.Status.Assignments))
	for _, a := range svc.Status.Assignments {
		out = append(out, a.Node)
	}
	return out
}

// placementChanged reports whether a Node update can change where replicas go. The status
// controller rewrites lastSeen about once a minute per node; that alone moves nothing, and
// waking every Service for it would cost O(Services) per node per minute.
func placementChanged(old, n *v1.Node) bool {
	strip := func(n *v1.Node) *v1.Node {
		c := *n
		c.Metadata.ResourceVersion = ""
		c.Status.LastSeen = nil
		return &c
	}
	return !reflect.DeepEqual(strip(old), strip(n))
}

// Reconcile plans one Service and writes its placement.
func (s *Scheduler) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	// While Run runs this is the cache's copy (shared: read-only, copied into next below). It may
	// lag the store by a moment; the write is a compare-and-swap on its resourceVersion, so a
	// stale read ends in a conflict and a short requeue, never in a lost update.
	svc, err := s.reader().Service(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		s.unplaced.DeleteLabelValues(name)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get service %q: %w", name, err)
	}
	now := s.cfg.Clock.Now()
	next := svc.DeepCopyObject().(*v1.Service)
	if svc.Metadata.DeletionTimestamp != nil {
		// Deleting: no replica belongs anywhere; nodes remove the containers.
		next.Status.Assignments = nil
		return reconcile.Result{}, s.write(ctx, svc, next)
	}
	next.Default()
	if errs := next.Validate(); len(errs) > 0 {
		setCondition(&next.Status.Conditions, v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionFalse,
			Reason: v1.ReasonInvalidSpec, Message: errs.ToAggregate("services", name).Error()}, now)
		return reconcile.Result{}, s.write(ctx, svc, next)
	}
	hash, err := revisionHash(ctx, s.reader(), next)
	if err != nil {
		return reconcile.Result{}, err
	}
	switch cur := next.Status.CurrentRevision; {
	case cur == nil || spechash.SpecPart(cur.SpecHash) != spechash.SpecPart(hash):
		// The current revision becomes the previous one and joins the bounded history.
		pushRevision(&next.Status, v1.ServiceRevision{SpecHash: hash, Spec: svc.DeepCopyObject().(*v1.Service).Spec}, s.cfg.RevisionHistoryLimit, now)
	case cur.SpecHash != hash:
		// The same spec with new Secret versions: a new revision to roll out, but the previous
		// one stays the previous spec, so that `rollout undo` still returns to it (undo cannot
		// bring back an old Secret value, which the store no longer has). Old replicas find
		// their spec through the spec part of their hash (spechash.Lookup).
		next.Status.CurrentRevision = &v1.ServiceRevision{SpecHash: hash, Spec: svc.DeepCopyObject().(*v1.Service).Spec,
			Revision: cur.Revision, CreatedAt: cur.CreatedAt}
	}

	in, health, err := s.input(ctx, next, hash, now)
	if err != nil {
		return reconcile.Result{}, err
	}
	plan := Compute(in)
	if held := heldByBrake(health, plan.Assignments); len(held) > 0 {
		// Say why replicas sit on nodes that look lost, rather than claim progress.
		plan.Progressing = v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionFalse, Reason: v1.ReasonDisruptionBrake,
			Message: fmt.Sprintf("replicas %s stay where they are: %s", strings.Join(held, ", "), health.BrakeMessage())}
	}
	s.noteBrake(health)
	next.Status.Assignments = plan.Assignments
	next.Status.DesiredReplicas = 0
	if next.Spec.IsGlobal() {
		next.Status.DesiredReplicas = plan.Desired
	}
	setCondition(&next.Status.Conditions, plan.Progressing, now)
	s.unplaced.WithLabelValues(name).Set(float64(plan.Unplaced))
	if err := s.write(ctx, svc, next); errors.Is(err, store.ErrConflict) {
		// Someone else (the status controller) wrote first: read again shortly.
		return reconcile.Result{RequeueAfter: 20 * time.Millisecond}, nil
	} else if err != nil {
		return reconcile.Result{}, err
	}
	if !reflect.DeepEqual(svc.Status, next.Status) {
		report(s.cfg.Events, name, placementEvents(svc.Status.Assignments, next.Status.Assignments, in, plan))
	}
	// No polling of an incomplete plan: everything that can complete it arrives as an event that
	// enqueues this Service (readiness and liveness through the view; Nodes, cordon, labels and
	// the spec through the store). Only the progress deadline and the end of a restart grace
	// (a restarting node may be lost by then, with nothing else to wake us) are matters of time.
	res := reconcile.Result{RequeueAfter: untilDeadline(next.Status.Conditions, s.cfg.ProgressDeadline, now)}
	if t := health.NextRecheck(); !t.IsZero() && (res.RequeueAfter == 0 || t.Sub(now) < res.RequeueAfter) {
		res.RequeueAfter = max(t.Sub(now), 10*time.Millisecond)
	}
	return res, nil
}

// revisionHash returns the revision svc (defaulted) must run: its spec hash and the versions of
// the Secrets its rolling secretRefs name (spechash.Revision). A referenced Secret or key that
// does not exist changes nothing while the spec stays the same: replicas keep running as they
// do, as they did before Secrets rolled anything (deleting a Secret must not take a Service
// down replica by replica). With a new spec, a missing one is part of the revision, and its
// replicas fail with SecretNotFound until it exists, which is another revision.
func revisionHash(ctx context.Context, rd reader, svc *v1.Service) (string, error) {
	names, keys := spechash.RollingSecrets(&svc.Spec)
	if len(names) == 0 && len(svc.Spec.Files) == 0 {
		return spechash.Of(&svc.Spec), nil
	}
	// spec.files: the Configs they read are versions of the revision too (configs.go).
	vs, missing, err := fileVersions(ctx, rd, svc)
	if err != nil {
		return "", err
	}
	for _, name := range names {
		sec, err := rd.Secret(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			missing = true
			vs = append(vs, spechash.SecretVersion{Name: name})
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get secrets/%s referenced by services/%s: %w", name, svc.Metadata.Name, err)
		}
		v := spechash.SecretVersion{Name: name, UID: sec.Metadata.UID}
		d, m := digestOf(sec.Spec.Data, keys[name]) // the cache holds digests (secretVersions)
		v.Digest, missing = d, missing || m
		vs = append(vs, v)
	}
	hash := spechash.Revision(&svc.Spec, vs)
	if cur := svc.Status.CurrentRevision; missing && cur != nil && spechash.SpecPart(cur.SpecHash) == spechash.SpecPart(hash) {
		return cur.SpecHash, nil
	}
	return hash, nil
}

// untilDeadline returns how long until a rolling update that stays without progress reaches
// the progress deadline (Compute fails it once SinceProgress exceeds the deadline), or 0 when
// no rollout is in progress.
func untilDeadline(conds []v1.Condition, deadline time.Duration, now time.Time) time.Duration {
	c := v1.FindCondition(conds, v1.ServiceProgressing)
	if c == nil || c.Reason != v1.ReasonRollingUpdate || deadline <= 0 {
		return 0
	}
	// Compute compares with ">": wake just after the deadline, never on it.
	if d := c.LastTransitionTime.Add(deadline).Sub(now) + time.Millisecond; d > 0 {
		return d
	}
	return time.Millisecond
}

// input gathers the planner's input for svc.
func (s *Scheduler) input(ctx context.Context, svc *v1.Service, hash string, now time.Time) (Input, nodehealth.Report, error) {
	sp := &svc.Spec
	in := Input{
		Desired: sp.DesiredReplicas(), SpecHash: hash,
		MaxSurge: *sp.Update.MaxSurge, MaxUnavailable: *sp.Update.MaxUnavailable,
		Assignments: svc.Status.Assignments, Observed: map[int32]ReplicaInfo{},
		ProgressDeadline: s.cfg.ProgressDeadline, Sticky: sp.StickyVolumes(), Now: now,
	}
	if p := sp.Placement; p != nil {
		in.NodeSelector, in.MaxPerNode = p.NodeSelector, p.MaxPerNode
	}
	if c := v1.FindCondition(svc.Status.Conditions, v1.ServiceProgressing); c != nil && c.Reason == v1.ReasonRollingUpdate {
		in.SinceProgress = now.Sub(c.LastTransitionTime)
	}
	rd := s.reader()
	nodes, err := rd.Nodes(ctx)
	if err != nil {
		return in, nodehealth.Report{}, fmt.Errorf("list nodes: %w", err)
	}
	snap := s.snapshot()
	health := nodehealth.Input{Nodes: nodes, Now: now, Policy: s.cfg.Health, NoView: snap == nil}
	if snap != nil {
		health.View = make([]observed.Node, 0, len(snap.Nodes))
		for _, n := range snap.Nodes {
			health.View = append(health.View, n)
		}
	}
	rep := nodehealth.Evaluate(health)
	in.Nodes = nodeInfos(rep)
	in.ImageHolders = imageHolders(s.cfg.View, sp.Image)
	if snap != nil {
		byIndex := map[int32][]observed.Replica{}
		for _, r := range snap.Replicas[svc.Metadata.Name] {
			byIndex[r.Index] = append(byIndex[r.Index], r)
		}
		for _, a := range svc.Status.Assignments {
			for _, r := range byIndex[a.Index] {
				if r.Node != a.Node {
					continue
				}
				in.Observed[a.Index] = ReplicaInfo{
					Node: r.Node, SpecHash: r.SpecHash, Ready: r.Ready(),
					Failed: IsFailedReason(r.Reason) || (r.Reason == v1.ReasonUnhealthy && r.Restarts >= 3),
					Reason: r.Reason, Message: r.Message,
				}
			}
		}
	}
	if in.CoPlace, err = coPlacement(ctx, rd, snap, svc); err != nil {
		return in, rep, err
	}
	if snap != nil && sp.EgressCheck != nil {
		in.Avoid = s.avoid.update(svc.Metadata.Name, snap.Replicas[svc.Metadata.Name], now)
	}
	if in.Load, err = rd.LoadExcept(ctx, svc.Metadata.Name); err != nil {
		return in, rep, fmt.Errorf("list services: %w", err)
	}
	if err := stackInputs(ctx, rd, svc, &in); err != nil {
		return in, rep, err
	}
	return in, rep, nil
}

// imageHolders are the nodes that advertise image, when the view knows of images (gossip's
// observed.Set does); nil otherwise.
func imageHolders(view observed.View, image string) map[string]bool {
	iv, ok := view.(observed.ImageView)
	if !ok || image == "" {
		return nil
	}
	var out map[string]bool
	for _, n := range iv.NodesWithImage(image) {
		if out == nil {
			out = map[string]bool{}
		}
		out[n] = true
	}
	return out
}

// nodeInfos turns the node-health report into what placement needs. A node takes new replicas
// only when Ready; the replicas on it stay unless the report lets consumers act on its loss
// (Lost, and the disruption brake not holding). Sorted by name, as the report is.
func nodeInfos(rep nodehealth.Report) []NodeInfo {
	out := make([]NodeInfo, 0, len(rep.Nodes))
	for _, n := range rep.Nodes {
		out = append(out, NodeInfo{
			Name: n.Name, Labels: n.Labels, Unschedulable: n.Unschedulable, Drain: n.Drain, NoRuntime: n.NoRuntime, Since: n.Since,
			Healthy: n.Verdict == nodehealth.Ready,
			Held:    n.Verdict != nodehealth.Ready && rep.Keeps(n.Name),
		})
	}
	return out
}

// reader is where Reconcile reads the store: its Service, the Node objects and the load of the
// other Services. What it returns is shared: read-only.
type reader interface {
	Service(ctx context.Context, name string) (*v1.Service, error)
	Nodes(ctx context.Context) ([]*v1.Node, error)
	// LoadExcept counts the assignments per node of every Service but the one named.
	LoadExcept(ctx context.Context, service string) (map[string]int, error)
	// HostPortHolders returns the Services whose replicas hold one of the host ports keys.
	HostPortHolders(ctx context.Context, keys []string) ([]*v1.Service, error)
	// Secret returns the Secret named name, its values blanked (keys and metadata are all
	// the scheduler needs), or an error wrapping store.ErrNotFound.
	Secret(ctx context.Context, name string) (*v1.Secret, error)
	// Config returns the Config named name, its values replaced by digests (configDigests),
	// or an error wrapping store.ErrNotFound.
	Config(ctx context.Context, name string) (*v1.Config, error)
}

// cacheReader reads the caches of Run: O(nodes) per reconcile.
type cacheReader struct {
	services *ctrl.Cache[*v1.Service]
	nodes    *ctrl.Cache[*v1.Node]
	secrets  *ctrl.Cache[*v1.Secret] // fed by secretVersions: no values
	configs  *ctrl.Cache[*v1.Config] // fed by configDigests: digests only
}

func (r cacheReader) Secret(_ context.Context, name string) (*v1.Secret, error) {
	if sec, ok := r.secrets.Get(name); ok {
		return sec, nil
	}
	return nil, fmt.Errorf("secrets/%s: %w", name, store.ErrNotFound)
}

func (r cacheReader) Service(_ context.Context, name string) (*v1.Service, error) {
	if svc, ok := r.services.Get(name); ok {
		return svc, nil
	}
	return nil, fmt.Errorf("services/%s: %w", name, store.ErrNotFound)
}

func (r cacheReader) Nodes(context.Context) ([]*v1.Node, error) { return r.nodes.List(), nil }

func (r cacheReader) LoadExcept(_ context.Context, service string) (map[string]int, error) {
	return r.services.Counts(indexAssignedNode, service), nil
}

func (r cacheReader) HostPortHolders(_ context.Context, keys []string) ([]*v1.Service, error) {
	seen := map[string]bool{}
	var out []*v1.Service
	for _, k := range keys {
		for _, n := range r.services.Indexed(indexHostPort, k) {
			if svc, ok := r.services.Get(n); ok && !seen[n] {
				seen[n] = true
				out = append(out, svc)
			}
		}
	}
	return out, nil
}

// storeReader reads the store: a linearizable Get of the Service, and lists that decode every
// Service and Node, O(Services) per reconcile. Reconcile uses it only when called outside Run
// (tests, tools; hack/bench-controllers times it as the old path).
type storeReader struct {
	st  Store
	key []byte // secret digest key
}

func (r storeReader) Service(ctx context.Context, name string) (*v1.Service, error) {
	obj, err := r.st.Get(ctx, v1.KindService, name)
	if err != nil {
		return nil, err
	}
	return obj.(*v1.Service), nil
}

func (r storeReader) Secret(ctx context.Context, name string) (*v1.Secret, error) {
	obj, err := r.st.Get(ctx, v1.KindSecret, name, store.Stale())
	if err != nil {
		return nil, err
	}
	sec, ok := blankSecret(obj, r.key).(*v1.Secret)
	if !ok {
		return nil, fmt.Errorf("secrets/%s: got a %T", name, obj)
	}
	return sec, nil
}

func (r storeReader) Nodes(ctx context.Context) ([]*v1.Node, error) {
	objs, _, err := r.st.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, err
	}
	out := make([]*v1.Node, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*v1.Node))
	}
	return out, nil
}

func (r storeReader) HostPortHolders(ctx context.Context, keys []string) ([]*v1.Service, error) {
	objs, _, err := r.st.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var out []*v1.Service
	for _, o := range objs {
		svc := o.(*v1.Service)
		for _, k := range svc.Spec.HostPorts() {
			if want[k] {
				out = append(out, svc)
				break
			}
		}
	}
	return out, nil
}

func (r storeReader) LoadExcept(ctx context.Context, service string) (map[string]int, error) {
	objs, _, err := r.st.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, err
	}
	load := map[string]int{}
	for _, o := range objs {
		if o.GetMetadata().Name == service {
			continue
		}
		for _, a := range o.(*v1.Service).Status.Assignments {
			load[a.Node]++
		}
	}
	return load, nil
}

func (s *Scheduler) reader() reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rd == nil {
		return storeReader{st: s.cfg.Store, key: s.cfg.secretDigestKey()}
	}
	return s.rd
}

// snapshot is the observed view Reconcile reads: the one of the last wake-up while Run runs,
// else the index's (taken again after any change); nil without a View.
func (s *Scheduler) snapshot() *observed.Snapshot {
	if s.index == nil {
		return nil
	}
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	if snap != nil {
		return snap
	}
	return s.index.Snapshot()
}

// setSnapshot sets the snapshot reconciles read while Run runs (a wake-up that ends after Run
// has returned sets nothing).
func (s *Scheduler) setSnapshot(snap *observed.Snapshot) {
	s.mu.Lock()
	if s.rd != nil || snap == nil {
		s.snap = snap
	}
	s.mu.Unlock()
}

func (s *Scheduler) setReader(rd reader) {
	s.mu.Lock()
	s.rd = rd
	s.mu.Unlock()
}

// write stores next's status when it differs from old's, with compare-and-swap on old's
// resourceVersion. A conflict is returned as an error: the loop requeues shortly and the next
// Reconcile reads the new version.
func (s *Scheduler) write(ctx context.Context, old, next *v1.Service) error {
	if reflect.DeepEqual(old.Status, next.Status) {
		return nil
	}
	if !s.cfg.IsLeader() {
		return ErrNotLeader
	}
	out := old.DeepCopyObject().(*v1.Service)
	out.Status.Assignments = next.Status.Assignments
	out.Status.DesiredReplicas = next.Status.DesiredReplicas
	out.Status.CurrentRevision = next.Status.CurrentRevision
	out.Status.PreviousRevision = next.Status.PreviousRevision
	out.Status.RevisionHistory = next.Status.RevisionHistory
	if c := v1.FindCondition(next.Status.Conditions, v1.ServiceProgressing); c != nil {
		setCondition(&out.Status.Conditions, *c, c.LastTransitionTime)
	}
	if _, err := s.cfg.Store.UpdateStatus(ctx, out); err != nil {
		return fmt.Errorf("update status of service %q: %w", old.Metadata.Name, err)
	}
	s.writes.Inc()
	return nil
}

// setCondition sets c with LastTransitionTime now when its status, reason or message changed,
// keeping the old time otherwise: for Progressing, the time is that of the last progress.
func setCondition(conds *[]v1.Condition, c v1.Condition, now time.Time) {
	if old := v1.FindCondition(*conds, c.Type); old != nil {
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			return
		}
		c.LastTransitionTime = now
		*old = c
		return
	}
	c.LastTransitionTime = now
	*conds = append(*conds, c)
}

// heldByBrake lists the replicas ("2 on n3") the plan keeps on nodes that are lost but held
// by the disruption brake.
func heldByBrake(rep nodehealth.Report, as []v1.Assignment) []string {
	if !rep.Braked {
		return nil
	}
	var out []string
	for _, a := range as {
		if rep.Verdict(a.Node) == nodehealth.Lost {
			out = append(out, fmt.Sprintf("%d on %s", a.Index, a.Node))
		}
	}
	return out
}

// noteBrake logs when the disruption brake engages or releases, and exports it as a gauge.
func (s *Scheduler) noteBrake(rep nodehealth.Report) {
	v := 0.0
	if rep.Braked {
		v = 1
	}
	s.brake.Set(v)
	if was := s.braked.Swap(rep.Braked); was != rep.Braked {
		if rep.Braked {
			s.log.Warn("disruption brake engaged: not re-placing replicas from lost nodes", "notReady", rep.NotReady, "nodes", rep.Total, "detail", rep.BrakeMessage())
		} else {
			s.log.Info("disruption brake released", "notReady", rep.NotReady, "nodes", rep.Total)
		}
	}
}

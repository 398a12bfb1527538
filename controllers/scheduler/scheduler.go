package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/runtime"
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
	// View is the observed state (node liveness, replica health). Nil: nodes are healthy when
	// their Node object is Ready, and no replica is ever ready.
	View observed.View
	// IsLeader is checked before every write. Nil: always true (the caller's leader context is
	// then the only fence).
	IsLeader func() bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// ProgressDeadline: a rollout that makes no progress for this long fails. Default 5m.
	ProgressDeadline time.Duration
	// Resync enqueues every Service this often. Default 30s.
	Resync time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the scheduler's metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *runtime.Metrics
}

// DefaultConfig returns the defaults for st.
func DefaultConfig(st Store) Config {
	return Config{Store: st, Now: time.Now, ProgressDeadline: 5 * time.Minute, Resync: 30 * time.Second}
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("scheduler: config: Store is required")
	}
	d := DefaultConfig(c.Store)
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.ProgressDeadline <= 0 {
		c.ProgressDeadline = d.ProgressDeadline
	}
	if c.Resync <= 0 {
		c.Resync = d.Resync
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
	unplaced *prometheus.GaugeVec
	writes   prometheus.Counter
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
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.unplaced); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
		if err := cfg.Registerer.Register(s.writes); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
	}
	return s, nil
}

// Run schedules until ctx ends. Call it with the leader context of the controller Lease; it may
// be called again after a later election.
func (s *Scheduler) Run(ctx context.Context) {
	loop := runtime.New[string]("scheduler", s, runtime.Options{Logger: s.cfg.Logger, Metrics: s.cfg.LoopMetrics})
	go runtime.ListWatch(ctx, s.cfg.Store, v1.KindService, s.log, func(ev store.Event) { loop.Enqueue(ev.Object.GetMetadata().Name) })
	all := func() { s.enqueueAll(ctx, loop) }
	go runtime.ListWatch(ctx, s.cfg.Store, v1.KindNode, s.log, func(store.Event) { all() })
	go func() {
		t := time.NewTicker(s.cfg.Resync)
		defer t.Stop()
		var changed <-chan struct{}
		for {
			if s.cfg.View != nil {
				changed = s.cfg.View.Changed()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				all()
			case <-changed:
				all()
				// Observed state changes in bursts; coalesce them.
				select {
				case <-ctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}()
	all()
	loop.Run(ctx)
}

func (s *Scheduler) enqueueAll(ctx context.Context, loop *runtime.Loop[string]) {
	objs, _, err := s.cfg.Store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list services", "err", err)
		}
		return
	}
	for _, o := range objs {
		loop.Enqueue(o.GetMetadata().Name)
	}
}

// Reconcile plans one Service and writes its placement.
func (s *Scheduler) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	obj, err := s.cfg.Store.Get(ctx, v1.KindService, name)
	if errors.Is(err, store.ErrNotFound) {
		s.unplaced.DeleteLabelValues(name)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get service %q: %w", name, err)
	}
	svc := obj.(*v1.Service)
	now := s.cfg.Now()
	next := svc.DeepCopyObject().(*v1.Service)
	if svc.Metadata.DeletionTimestamp != nil {
		// Deleting: no replica belongs anywhere; nodes remove the containers.
		next.Status.Assignments = nil
		return reconcile.Result{}, s.write(ctx, svc, next)
	}
	next.Default()
	if errs := next.Validate(); len(errs) > 0 {
		setCondition(&next.Status.Conditions, v1.Condition{Type: v1.ServiceProgressing, Status: v1.ConditionFalse,
			Reason: "InvalidSpec", Message: errs.ToAggregate("services", name).Error()}, now)
		return reconcile.Result{}, s.write(ctx, svc, next)
	}
	hash := spechash.OfService(next)
	if cur := next.Status.CurrentRevision; cur == nil || cur.SpecHash != hash {
		next.Status.PreviousRevision = cur
		next.Status.CurrentRevision = &v1.ServiceRevision{SpecHash: hash, Spec: svc.DeepCopyObject().(*v1.Service).Spec}
	}

	in, err := s.input(ctx, next, hash, now)
	if err != nil {
		return reconcile.Result{}, err
	}
	plan := Compute(in)
	next.Status.Assignments = plan.Assignments
	setCondition(&next.Status.Conditions, plan.Progressing, now)
	s.unplaced.WithLabelValues(name).Set(float64(plan.Unplaced))
	if err := s.write(ctx, svc, next); errors.Is(err, store.ErrConflict) {
		// Someone else (the status controller) wrote first: read again shortly.
		return reconcile.Result{RequeueAfter: 20 * time.Millisecond}, nil
	} else if err != nil {
		return reconcile.Result{}, err
	}
	if !plan.Complete {
		// Poll while rolling: readiness arrives through the view, the deadline through time.
		return reconcile.Result{RequeueAfter: 2 * time.Second}, nil
	}
	return reconcile.Result{}, nil
}

// input gathers the planner's input for svc.
func (s *Scheduler) input(ctx context.Context, svc *v1.Service, hash string, now time.Time) (Input, error) {
	sp := &svc.Spec
	in := Input{
		Desired: sp.DesiredReplicas(), SpecHash: hash,
		MaxSurge: *sp.Update.MaxSurge, MaxUnavailable: *sp.Update.MaxUnavailable,
		Assignments: svc.Status.Assignments, Observed: map[int32]ReplicaInfo{},
		Load: map[string]int{}, ProgressDeadline: s.cfg.ProgressDeadline,
	}
	if p := sp.Placement; p != nil {
		in.NodeSelector, in.MaxPerNode = p.NodeSelector, p.MaxPerNode
	}
	if c := v1.FindCondition(svc.Status.Conditions, v1.ServiceProgressing); c != nil && c.Reason == v1.ReasonRollingUpdate {
		in.SinceProgress = now.Sub(c.LastTransitionTime)
	}
	nodeObjs, _, err := s.cfg.Store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return in, fmt.Errorf("list nodes: %w", err)
	}
	var viewNodes map[string]observed.Node
	if s.cfg.View != nil {
		viewNodes = map[string]observed.Node{}
		for _, n := range s.cfg.View.Nodes() {
			viewNodes[n.Name] = n
		}
	}
	seen := map[string]bool{}
	for _, o := range nodeObjs {
		n := o.(*v1.Node)
		info := NodeInfo{Name: n.Metadata.Name, Labels: n.Spec.Labels, Unschedulable: n.Spec.Unschedulable, Drain: n.Spec.Drain}
		ready := v1.FindCondition(n.Status.Conditions, v1.NodeReady)
		vn, inView := viewNodes[n.Metadata.Name]
		switch {
		case ready != nil && ready.Status == v1.ConditionFalse:
		case inView:
			info.Healthy = vn.Alive
		default:
			info.Healthy = ready != nil && ready.Status == v1.ConditionTrue
		}
		if info.Labels == nil && inView {
			info.Labels = vn.Labels
		}
		info.NoRuntime = inView && vn.Labels[observed.LabelRuntime] == observed.RuntimeNone
		seen[info.Name] = true
		in.Nodes = append(in.Nodes, info)
	}
	// A node gossip knows but that has not registered its Node object yet still counts.
	for name, vn := range viewNodes {
		if !seen[name] {
			in.Nodes = append(in.Nodes, NodeInfo{Name: name, Labels: vn.Labels, Healthy: vn.Alive,
				NoRuntime: vn.Labels[observed.LabelRuntime] == observed.RuntimeNone})
		}
	}
	sortNodes(in.Nodes)
	if s.cfg.View != nil {
		byIndex := map[int32][]observed.Replica{}
		for _, r := range s.cfg.View.Replicas() {
			if r.Service == svc.Metadata.Name {
				byIndex[r.Index] = append(byIndex[r.Index], r)
			}
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
	svcs, _, err := s.cfg.Store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return in, fmt.Errorf("list services: %w", err)
	}
	for _, o := range svcs {
		if o.GetMetadata().Name == svc.Metadata.Name {
			continue
		}
		for _, a := range o.(*v1.Service).Status.Assignments {
			in.Load[a.Node]++
		}
	}
	return in, nil
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
	out.Status.CurrentRevision = next.Status.CurrentRevision
	out.Status.PreviousRevision = next.Status.PreviousRevision
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

func sortNodes(ns []NodeInfo) {
	for i := 1; i < len(ns); i++ {
		for j := i; j > 0 && ns[j].Name < ns[j-1].Name; j-- {
			ns[j], ns[j-1] = ns[j-1], ns[j]
		}
	}
}

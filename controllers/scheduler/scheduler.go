package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/runtime"
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
	// View is the observed state (node liveness, replica health). Nil: nodes are healthy when
	// their Node object is Ready, and no replica is ever ready.
	View observed.View
	// IsLeader is checked before every write. Nil: always true (the caller's leader context is
	// then the only fence).
	IsLeader func() bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Health holds the node-health timings (the restart grace). Default nodehealth.DefaultPolicy.
	Health nodehealth.Policy
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
	brake    prometheus.Gauge
	braked   atomic.Bool // the brake held at the last reconcile (for logging transitions)
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
			Reason: v1.ReasonInvalidSpec, Message: errs.ToAggregate("services", name).Error()}, now)
		return reconcile.Result{}, s.write(ctx, svc, next)
	}
	hash := spechash.OfService(next)
	if cur := next.Status.CurrentRevision; cur == nil || cur.SpecHash != hash {
		next.Status.PreviousRevision = cur
		next.Status.CurrentRevision = &v1.ServiceRevision{SpecHash: hash, Spec: svc.DeepCopyObject().(*v1.Service).Spec}
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
		plan.Complete = false
	}
	s.noteBrake(health)
	next.Status.Assignments = plan.Assignments
	setCondition(&next.Status.Conditions, plan.Progressing, now)
	s.unplaced.WithLabelValues(name).Set(float64(plan.Unplaced))
	if err := s.write(ctx, svc, next); errors.Is(err, store.ErrConflict) {
		// Someone else (the status controller) wrote first: read again shortly.
		return reconcile.Result{RequeueAfter: 20 * time.Millisecond}, nil
	} else if err != nil {
		return reconcile.Result{}, err
	}
	res := reconcile.Result{}
	if !plan.Complete {
		// Poll while rolling: readiness arrives through the view, the deadline through time.
		res.RequeueAfter = 2 * time.Second
	}
	if t := health.NextRecheck(); !t.IsZero() && (res.RequeueAfter == 0 || t.Sub(now) < res.RequeueAfter) {
		// A restart grace ends: the node may be lost by then, with nothing else to wake us.
		res.RequeueAfter = max(t.Sub(now), 10*time.Millisecond)
	}
	return res, nil
}

// input gathers the planner's input for svc.
func (s *Scheduler) input(ctx context.Context, svc *v1.Service, hash string, now time.Time) (Input, nodehealth.Report, error) {
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
		return in, nodehealth.Report{}, fmt.Errorf("list nodes: %w", err)
	}
	nodes := make([]*v1.Node, 0, len(nodeObjs))
	for _, o := range nodeObjs {
		nodes = append(nodes, o.(*v1.Node))
	}
	health := nodehealth.Input{Nodes: nodes, Now: now, Policy: s.cfg.Health, NoView: s.cfg.View == nil}
	if s.cfg.View != nil {
		health.View = s.cfg.View.Nodes()
	}
	rep := nodehealth.Evaluate(health)
	in.Nodes = nodeInfos(rep)
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
		return in, rep, fmt.Errorf("list services: %w", err)
	}
	for _, o := range svcs {
		if o.GetMetadata().Name == svc.Metadata.Name {
			continue
		}
		for _, a := range o.(*v1.Service).Status.Assignments {
			in.Load[a.Node]++
		}
	}
	return in, rep, nil
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

// nodeInfos turns the node-health report into what placement needs. A node takes new replicas
// only when Ready; the replicas on it stay unless the report lets consumers act on its loss
// (Lost, and the disruption brake not holding). Sorted by name, as the report is.
func nodeInfos(rep nodehealth.Report) []NodeInfo {
	out := make([]NodeInfo, 0, len(rep.Nodes))
	for _, n := range rep.Nodes {
		out = append(out, NodeInfo{
			Name: n.Name, Labels: n.Labels, Unschedulable: n.Unschedulable, Drain: n.Drain, NoRuntime: n.NoRuntime,
			Healthy: n.Verdict == nodehealth.Ready,
			Held:    n.Verdict != nodehealth.Ready && rep.Keeps(n.Name),
		})
	}
	return out
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

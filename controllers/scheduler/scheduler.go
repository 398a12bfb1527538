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

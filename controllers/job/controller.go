package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is the part of the store the job controllers use.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Create(ctx context.Context, obj v1.Object) (v1.Object, error)
	UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error)
	Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// ControllerConfig configures the cluster-wide Controller.
type ControllerConfig struct {
	// Store holds Jobs, CronJobs and Nodes. Required.
	Store Store
	// Clock is the time CronJob schedules are read against; it also times the loop's delays
	// and the resync. Default clock.RealClock{}.
	Clock clock.WithTicker
	// IsLeader fences writes: nothing is written unless it returns true (the controller
	// Lease). Default: always the leader (tests).
	IsLeader func() bool
	// Resync re-reconciles every Job and CronJob this often. Default 30s.
	Resync time.Duration
	// MaxMissed bounds how many missed runs of a CronJob are looked at (the controller was
	// down a long time): only the latest counts anyway. Default 1000.
	MaxMissed int
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *ctrl.Metrics
}

func (c *ControllerConfig) validate() error {
	if c.Store == nil {
		return errors.New("job controller: config: Store is required")
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return true }
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	if c.MaxMissed <= 0 {
		c.MaxMissed = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Controller is the cluster-wide half of Jobs (one active, under the controller Lease): it
// places each Job on a node and turns CronJob schedules into Jobs, pruning their history.
// Reconcile keys are "job/NAME" and "cronjob/NAME".
type Controller struct {
	cfg     ControllerConfig
	log     *slog.Logger
	created prometheus.Counter
	skipped *prometheus.CounterVec
}

var _ reconcile.TypedReconciler[string] = (*Controller)(nil)

// NewController returns a Controller.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg: cfg, log: cfg.Logger.With("controller", "job"),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_cronjob_jobs_created_total", Help: "Jobs created by CronJobs.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_cronjob_runs_skipped_total", Help: "CronJob runs not started, by reason (forbid, deadline).",
		}, []string{"reason"}),
	}
	if cfg.Registerer != nil {
		for _, col := range []prometheus.Collector{c.created, c.skipped} {
			if err := cfg.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("job controller: register metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Run reconciles until ctx ends. The agent runs it while it holds the controller Lease.
func (c *Controller) Run(ctx context.Context) {
	loop := ctrl.New[string]("job", c, ctrl.Options{Logger: c.cfg.Logger, Metrics: c.cfg.LoopMetrics, MaxDelay: 30 * time.Second, Clock: c.cfg.Clock})
	go ctrl.ListWatch(ctx, c.cfg.Store, v1.KindJob, c.log, func(ev store.Event) {
		j := ev.Object.(*v1.Job)
		loop.Enqueue("job/" + j.Metadata.Name)
		if cj := j.Metadata.Labels[v1.LabelCronJob]; cj != "" {
			loop.Enqueue("cronjob/" + cj)
		}
	})
	go ctrl.ListWatch(ctx, c.cfg.Store, v1.KindCronJob, c.log, func(ev store.Event) {
		loop.Enqueue("cronjob/" + ev.Object.GetMetadata().Name)
	})
	// A node that becomes Ready may take the Jobs that found none.
	go ctrl.ListWatch(ctx, c.cfg.Store, v1.KindNode, c.log, func(store.Event) { c.enqueuePending(ctx, loop) })
	go func() {
		t := c.cfg.Clock.NewTicker(c.cfg.Resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				c.enqueueAll(ctx, loop)
			}
		}
	}()
	loop.Run(ctx)
}

func (c *Controller) enqueuePending(ctx context.Context, loop *ctrl.Loop[string]) {
	objs, _, err := c.cfg.Store.List(ctx, v1.KindJob, v1.Selector{}, store.Stale())
	if err != nil {
		return
	}
	for _, o := range objs {
		if j := o.(*v1.Job); !j.Status.Finished() {
			loop.Enqueue("job/" + j.Metadata.Name)
		}
	}
}

func (c *Controller) enqueueAll(ctx context.Context, loop *ctrl.Loop[string]) {
	for _, kind := range []string{v1.KindJob, v1.KindCronJob} {
		objs, _, err := c.cfg.Store.List(ctx, kind, v1.Selector{}, store.Stale())
		if err != nil {
			c.log.Warn("resync: list", "kind", kind, "err", err)
			continue
		}
		info, _ := v1.LookupKind(kind)
		for _, o := range objs {
			loop.Enqueue(info.Singular + "/" + o.GetMetadata().Name)
		}
	}
}

// Reconcile handles "job/NAME" and "cronjob/NAME".
func (c *Controller) Reconcile(ctx context.Context, key string) (reconcile.Result, error) {
	if !c.cfg.IsLeader() {
		return reconcile.Result{}, nil
	}
	kind, name, _ := strings.Cut(key, "/")
	switch kind {
	case "job":
		return c.reconcileJob(ctx, name)
	case "cronjob":
		return c.reconcileCronJob(ctx, name)
	}
	return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("job controller: bad key %q", key))
}

// noNodeRetry is how often a Job that found no node looks again (node changes wake it too).
const noNodeRetry = 10 * time.Second

// reconcileJob places a Job that has no node yet, or whose node left before it started.
func (c *Controller) reconcileJob(ctx context.Context, name string) (reconcile.Result, error) {
	o, err := c.cfg.Store.Get(ctx, v1.KindJob, name)
	if errors.Is(err, store.ErrNotFound) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get jobs/%s: %w", name, err)
	}
	j := o.(*v1.Job)
	if j.Status.Finished() || j.Metadata.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	nodes, err := c.nodes(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	if j.Status.Node != "" {
		// A node keeps its Job once an attempt started there (its container may still run:
		// the data plane outlives the control plane). Before that, a node that is gone or
		// not Ready gives it up.
		if j.Status.Attempts > 0 || j.Status.Phase == v1.JobRunning || eligible(nodes[j.Status.Node], j) {
			return reconcile.Result{}, nil
		}
	}
	node, err := c.pick(ctx, j, nodes)
	if err != nil {
		return reconcile.Result{}, err
	}
	st := j.DeepCopyObject().(*v1.Job)
	st.Status.ObservedGeneration = j.Metadata.Generation
	st.Status.Phase = v1.JobPending
	if node == "" {
		if st.Status.Node == "" && st.Status.Message != "no Ready node matches spec.placement" {
			st.Status.Message = "no Ready node matches spec.placement"
			setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionFalse, Reason: v1.ReasonNoNode, Message: st.Status.Message}, c.cfg.Clock.Now())
			if err := c.writeJobStatus(ctx, st); err != nil {
				return reconcile.Result{}, err
			}
		}
		return reconcile.Result{RequeueAfter: noNodeRetry}, nil
	}
	st.Status.Node = node
	st.Status.Message = "assigned to node " + node
	setCondition(&st.Status.Conditions, v1.Condition{Type: v1.JobComplete, Status: v1.ConditionFalse, Reason: v1.ReasonJobScheduled, Message: st.Status.Message}, c.cfg.Clock.Now())
	if err := c.writeJobStatus(ctx, st); err != nil {
		return reconcile.Result{}, err
	}
	c.log.Info("job placed", "job", name, "node", node)
	return reconcile.Result{}, nil
}

func (c *Controller) writeJobStatus(ctx context.Context, j *v1.Job) error {
	if !c.cfg.IsLeader() {
		return nil
	}
	if _, err := c.cfg.Store.UpdateStatus(ctx, j); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("write status of jobs/%s: %w (retrying)", j.Metadata.Name, err)
		}
		return fmt.Errorf("write status of jobs/%s: %w", j.Metadata.Name, err)
	}
	return nil
}

func (c *Controller) nodes(ctx context.Context) (map[string]*v1.Node, error) {
	objs, _, err := c.cfg.Store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make(map[string]*v1.Node, len(objs))
	for _, o := range objs {
		out[o.GetMetadata().Name] = o.(*v1.Node)
	}
	return out, nil
}

// eligible reports whether n may run j: Ready, schedulable, matching its node selector.
func eligible(n *v1.Node, j *v1.Job) bool {
	if n == nil || n.Spec.Unschedulable {
		return false
	}
	if c := v1.FindCondition(n.Status.Conditions, v1.NodeReady); c == nil || c.Status != v1.ConditionTrue {
		return false
	}
	if p := j.Spec.Placement; p != nil && len(p.NodeSelector) > 0 {
		return v1.SelectorFromMap(p.NodeSelector).Matches(n.EffectiveLabels())
	}
	return true
}

// pick returns the eligible node running the fewest unfinished Jobs (ties by name), or "".
func (c *Controller) pick(ctx context.Context, j *v1.Job, nodes map[string]*v1.Node) (string, error) {
	objs, _, err := c.cfg.Store.List(ctx, v1.KindJob, v1.Selector{}, store.Stale())
	if err != nil {
		return "", fmt.Errorf("list jobs: %w", err)
	}
	load := map[string]int{}
	for _, o := range objs {
		if other := o.(*v1.Job); !other.Status.Finished() && other.Status.Node != "" && other.Metadata.Name != j.Metadata.Name {
			load[other.Status.Node]++
		}
	}
	return PickNode(j, nodes, load), nil
}

// PickNode is the placement rule, pure: the eligible node with the least load, ties by name.
func PickNode(j *v1.Job, nodes map[string]*v1.Node, load map[string]int) string {
	names := make([]string, 0, len(nodes))
	for n, node := range nodes {
		if eligible(node, j) {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(a, b int) bool {
		if load[names[a]] != load[names[b]] {
			return load[names[a]] < load[names[b]]
		}
		return names[a] < names[b]
	})
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// JobName is the name of the Job a CronJob creates for the run scheduled at t:
// "<cronjob>-<unix minute>" (Kubernetes' naming), so that a run is created at most once
// whichever controller instance gets there.
func JobName(cronJob string, t time.Time) string {
	return cronJob + "-" + strconv.FormatInt(t.Unix()/60, 10)
}

func setCondition(conds *[]v1.Condition, c v1.Condition, now time.Time) {
	for i := range *conds {
		old := &(*conds)[i]
		if old.Type == c.Type {
			if old.Status != c.Status {
				old.LastTransitionTime = now
			}
			old.Status, old.Reason, old.Message = c.Status, c.Reason, c.Message
			return
		}
	}
	c.LastTransitionTime = now
	*conds = append(*conds, c)
}

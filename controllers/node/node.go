package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/redact"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Reconciler converges this node's containers. Reconcile(ctx, serviceName).
type Reconciler struct {
	cfg     Config
	log     *slog.Logger
	prober  *prober
	egress  *egressMonitor
	puller  *puller
	sources imageSources // where pulled images came from (peerpull.go)
	backoff func(int) time.Duration
	enqueue func(string)
	// pullRefresh: see defaultPullRefresh (tests shorten it).
	pullRefresh time.Duration

	// pubMu orders the calls of Config.Publish (publishWith); taken before mu, never under it.
	pubMu sync.Mutex
	mu    sync.Mutex
	// published replicas by service; guarded by mu.
	published map[string][]observed.Replica
	// states of replicas by service and index; guarded by mu.
	states map[string]map[int32]*replicaState
	// draining containers by ID: their service and when their drain started; guarded by mu.
	draining map[string]drain
	// lastSeen is the last container list of each service, published (with the agent's own
	// probes folded in) while the engine does not answer; guarded by mu.
	lastSeen map[string][]docker.Container
	// scrubbers hold the values of the Secrets each service references, refreshed every pass:
	// published messages (log tails, health output, errors) are scrubbed of them; guarded by mu.
	scrubbers map[string]*redact.Scrubber
	// gated maps a Service sharing a gateway's namespace to why no gateway container on this
	// node is usable (its replicas are not run: fail closed); guarded by mu.
	gated map[string]string

	actions *prometheus.CounterVec
}

var _ reconcile.TypedReconciler[string] = (*Reconciler)(nil)

// New returns a Reconciler.
func New(cfg Config) (*Reconciler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Reconciler{
		cfg: cfg, log: cfg.Logger.With("controller", "node", "node", cfg.Node),
		backoff:     backoff(cfg.BackoffBase, cfg.BackoffMax),
		pullRefresh: defaultPullRefresh,
		enqueue:     func(string) {},
		published:   map[string][]observed.Replica{},
		states:      map[string]map[int32]*replicaState{},
		draining:    map[string]drain{},
		lastSeen:    map[string][]docker.Container{},
		scrubbers:   map[string]*redact.Scrubber{},
		gated:       map[string]string{},
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_node_container_actions_total", Help: "Container actions by kind and outcome.",
		}, []string{"action", "outcome"}),
	}
	wake := func(svc string) {
		r.mu.Lock()
		enqueue := r.enqueue
		r.mu.Unlock()
		enqueue(svc)
	}
	r.prober = newProber(wake, cfg.Clock)
	r.egress = newEgressMonitor(wake, cfg.Clock, r.log)
	r.prober.prior = map[string]v1.Health{}
	for _, rep := range cfg.Restored {
		r.published[rep.Service] = append(r.published[rep.Service], rep)
		if rep.ContainerID != "" {
			r.prober.prior[rep.ContainerID] = rep.Health
		}
	}
	r.puller = newPuller(peersFirst(cfg.PeerFetch, cfg.Docker.PullImage, &r.sources, r.log), cfg.PullTimeout, cfg.Clock.Now, r.log, wake)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r.actions); err != nil {
			return nil, fmt.Errorf("node reconciler: register metrics: %w", err)
		}
		for _, c := range r.egress.collectors() {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("node reconciler: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Run reconciles until ctx ends: on Service changes, on Docker events for this node's
// containers (within a second), on health changes, and every Resync.
func (r *Reconciler) Run(ctx context.Context) {
	loop := ctrl.New[string]("node", r, ctrl.Options{Workers: r.cfg.Workers, Logger: r.cfg.Logger, Metrics: r.cfg.LoopMetrics, MaxDelay: 10 * time.Second, Clock: r.cfg.Clock})
	r.mu.Lock()
	r.enqueue = loop.Enqueue
	r.mu.Unlock()
	r.puller.setBase(ctx)
	defer r.prober.stopAll()
	defer r.egress.stopAll()
	go ctrl.ListWatch(ctx, r.cfg.Store, v1.KindService, r.log, func(ev store.Event) { loop.Enqueue(ev.Object.GetMetadata().Name) })
	go r.watchEvents(ctx, loop)
	for _, rep := range r.cfg.Restored {
		// Each restored Service is reconciled once, so that one deleted meanwhile is withdrawn.
		loop.Enqueue(rep.Service)
	}
	go func() {
		t := r.cfg.Clock.NewTicker(r.cfg.Resync)
		defer t.Stop()
		for {
			r.enqueueAll(ctx, loop)
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
		}
	}()
	loop.Run(ctx)
}

// enqueueAll enqueues every Service of the store and every service found on this node's
// container labels. It runs on the resync timer and after the event stream reconnects, outside
// the workers, and is bounded by CallTimeout: an engine that does not answer must not stop the
// resync or the reconnect loop.
func (r *Reconciler) enqueueAll(parent context.Context, loop *ctrl.Loop[string]) {
	ctx, cancel := context.WithTimeoutCause(parent, r.cfg.CallTimeout, fmt.Errorf("node %s: resync: %w after %s", r.cfg.Node, errCallTimeout, r.cfg.CallTimeout))
	defer cancel()
	names := map[string]bool{}
	if objs, _, err := r.cfg.Store.List(ctx, v1.KindService, v1.Selector{}, store.Stale()); err == nil {
		for _, o := range objs {
			names[o.GetMetadata().Name] = true
		}
	} else if parent.Err() == nil {
		r.log.Warn("list services", "err", err)
	}
	if cs, err := r.cfg.Docker.List(ctx, map[string]string{docker.LabelNode: r.cfg.Node}); err == nil {
		for _, c := range cs {
			if s := c.Labels[docker.LabelService]; s != "" {
				names[s] = true
			}
		}
	} else if parent.Err() == nil {
		r.log.Warn("list containers for the resync", "err", err, "cause", context.Cause(ctx))
	}
	for n := range names {
		loop.Enqueue(n)
	}
}

// watchEvents follows Docker's event stream for this node's containers, reconnecting with
// backoff when the daemon goes away and resyncing everything when it is back.
func (r *Reconciler) watchEvents(ctx context.Context, loop *ctrl.Loop[string]) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, errc := r.cfg.Docker.Events(ctx, map[string]string{docker.LabelNode: r.cfg.Node})
		start := r.cfg.Clock.Now()
		for ev := range evs {
			if strings.HasPrefix(ev.Action, "exec_") {
				continue // exec health checks: the health_status event follows
			}
			if s := ev.Labels[docker.LabelService]; s != "" {
				loop.Enqueue(s)
			}
		}
		err := <-errc
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("docker events ended, reconnecting", "err", err, "after", delay)
		if r.cfg.Clock.Since(start) > 10*time.Second {
			delay = 100 * time.Millisecond
		}
		sleep(ctx, r.cfg.Clock, delay)
		delay = min(delay*2, 5*time.Second)
		// Whatever happened while the stream was down, converge again.
		r.enqueueAll(ctx, loop)
	}
}

func sleep(ctx context.Context, clk clock.Clock, d time.Duration) {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

// errReconcileTimeout and errCallTimeout are the causes of the reconciler's own deadlines.
var (
	errReconcileTimeout = errors.New("reconcile deadline exceeded")
	errCallTimeout      = errors.New("docker call deadline exceeded")
)

// defaultPullRefresh is how often a replica waiting for its image is reconciled again, so
// that the pull's progress in its message stays current.
const defaultPullRefresh = 5 * time.Second

// Reconcile converges the containers of one Service on this node, within ReconcileTimeout
// (controller-runtime's ReconciliationTimeout): the loop hands every pass its long-lived Run
// context, and one engine call that never returns would otherwise hold a worker for good.
func (r *Reconciler) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	start := r.cfg.Clock.Now()
	cause := fmt.Errorf("reconcile service %q: %w after %s", name, errReconcileTimeout, r.cfg.ReconcileTimeout)
	pctx, cancel := context.WithTimeoutCause(ctx, r.cfg.ReconcileTimeout, cause)
	defer cancel()
	res, err := r.reconcile(pctx, name, start)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(pctx), cause) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	if took := r.cfg.Clock.Since(start); took >= r.cfg.SlowReconcile {
		r.log.Warn("slow reconcile", "service", name, "duration", took.Round(time.Millisecond), "err", err)
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, name string, now time.Time) (reconcile.Result, error) {
	var svc *v1.Service
	desired := map[int32]string{}
	obj, err := r.cfg.Store.Get(ctx, v1.KindService, name, store.Stale())
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Gone: nothing of it belongs here.
	case err != nil:
		// The store cannot be read: keep everything as it is.
		return reconcile.Result{}, fmt.Errorf("get service %q: %w", name, err)
	default:
		svc = obj.(*v1.Service)
		if svc.Metadata.DeletionTimestamp == nil {
			for _, a := range svc.Status.Assignments {
				if a.Node == r.cfg.Node {
					desired[a.Index] = a.SpecHash
				}
			}
		}
	}
	r.refreshScrubber(ctx, name, svc)
	labels := map[string]string{docker.LabelService: name, docker.LabelNode: r.cfg.Node}
	cs, err := r.cfg.Docker.List(ctx, labels)
	if err != nil {
		if errors.Is(err, docker.ErrUnavailable) || errors.Is(context.Cause(ctx), errReconcileTimeout) {
			// Cannot see is not gone, and not healthy either: publish what was last seen
			// with the health the agent's own probes still see (observe.go).
			r.publishBlind(name, svc, desired)
		}
		return reconcile.Result{}, fmt.Errorf("list containers of %q: %w", name, err)
	}
	r.seen(name, cs)
	// Account for exits and healthy stretches before planning.
	states := r.account(ctx, name, svc, cs, now)
	health, _ := r.health(name, svc, cs, now)
	draining := r.drainsOf(name, cs, desired)
	netns, err := r.netns(ctx, name, svc)
	if err != nil {
		return reconcile.Result{}, err
	}
	healWait := r.egressChecks(ctx, name, svc, cs, now)
	p := plan(planInput{Desired: desired, Containers: cs, Health: health, States: states,
		Draining: draining, DrainDelay: r.cfg.DrainDelay, Now: now, Backoff: r.backoff, Netns: netns})

	if err := r.apply(ctx, name, svc, p.Actions, cs, now); err != nil {
		return reconcile.Result{}, err
	}
	if len(p.Actions) > 0 {
		if cs, err = r.cfg.Docker.List(ctx, labels); err != nil {
			return reconcile.Result{}, fmt.Errorf("list containers of %q: %w", name, err)
		}
		r.seen(name, cs)
	}
	health, minReadyWait := r.health(name, svc, cs, r.cfg.Clock.Now())
	pulling := r.publish(name, svc, desired, cs, health)
	res := reconcile.Result{RequeueAfter: p.Wait}
	requeue := func(d time.Duration) {
		if d > 0 && (res.RequeueAfter == 0 || d < res.RequeueAfter) {
			res.RequeueAfter = d
		}
	}
	requeue(minReadyWait)
	requeue(healWait)
	// Whatever happened to a namespace owner, the Services sharing it look again.
	for _, d := range r.egress.dependentsOf(name) {
		r.enqueueService(d)
	}
	if pulling {
		// The puller enqueues the service when the pull ends; this only refreshes progress.
		requeue(r.pullRefresh)
	}
	// Starting replicas are watched by the prober (or Docker's health events); exits by events.
	return res, nil
}

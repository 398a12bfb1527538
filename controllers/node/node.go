package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/runtime"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/redact"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Docker is the part of the engine the node reconciler uses; *docker.Client implements it.
type Docker interface {
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
	Create(ctx context.Context, cfg docker.CreateConfig) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	// HasImage is a short local check; PullImage may take minutes and runs off the workers
	// (puller.go).
	HasImage(ctx context.Context, ref string) (bool, error)
	PullImage(ctx context.Context, ref string, progress func(docker.PullProgress)) error
	EnsureNetwork(ctx context.Context, name string) error
	EnsureVolume(ctx context.Context, name string) error
	LogTail(ctx context.Context, id string, since time.Time, lines int) (string, error)
	Events(ctx context.Context, labels map[string]string) (<-chan docker.Event, <-chan error)
}

var _ Docker = (*docker.Client)(nil)

// Store is the part of store.Store the node reconciler uses.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// Config configures a Reconciler.
type Config struct {
	// Node is this node's name. Required.
	Node string
	// Advertise is the address other nodes reach this node's published ports at, reported in
	// observed replicas' Ports. Default 127.0.0.1.
	Advertise string
	// PublishIP is the host address ports are published on. Default 0.0.0.0.
	PublishIP string
	// NamePrefix goes before container names (tests use a per-run prefix). Default "".
	NamePrefix string
	// MeshDNS and MeshDomain make new containers resolve through the mesh's name server
	// (docker.BuildOptions). Default "": Docker's resolvers.
	MeshDNS, MeshDomain string
	// Store holds Services and Secrets. Required.
	Store Store
	// Docker is the engine. Required.
	Docker Docker
	// Publish receives all of this node's replicas after every change (point it at
	// observed.Set.SetNodeReplicas or gossip). Required.
	Publish func([]observed.Replica)
	// Secret resolves env secretRefs. Default: read the Secret from Store.
	Secret func(ctx context.Context, name, key string) (string, error)
	// HostAccess is this agent's host-access policy (--security.*), checked again before every
	// container is created: agents may be configured differently from the one that admitted
	// the Service, and only the node sees its own symlinks. A replica refused here is not
	// created; its status says why (reason HostAccessDenied, the field and the flag). Default:
	// the zero Policy (the opt-in is needed, nothing sensitive allowed), with Node set to this
	// node and Resolve to filepath.EvalSymlinks.
	HostAccess hostaccess.Policy
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Resync re-reconciles every service this often. Default 30s.
	Resync time.Duration
	// DrainDelay: a running replica that no longer belongs is published as terminating this long
	// before it is stopped, so that load balancers stop sending to it. It should exceed the time
	// the view takes to reach the load balancer: gossip propagation + Traefik's pollInterval
	// (5s by default). Default 5s; negative disables.
	DrainDelay time.Duration
	// StopTimeout before SIGKILL. Default 10s.
	StopTimeout time.Duration
	// BackoffBase and BackoffMax bound restart backoff. Default 1s and 60s.
	BackoffBase, BackoffMax time.Duration
	// MinReady: a replica without a health check counts as ready only after running this long,
	// so that a container that exits at once never replaces a good one in an update.
	// Default 1s.
	MinReady time.Duration
	// CrashLoopThreshold failures in a row make a replica CrashLoop. Default 3.
	CrashLoopThreshold int
	// Workers reconcile services in parallel. Default 2.
	Workers int
	// ReconcileTimeout bounds one pass over one Service, whatever the engine does: a pass that
	// runs out of it fails (and is retried with backoff) and frees its worker. It must exceed
	// the longest Docker call of a pass (a create, pkg/docker: 2m). Default 3m.
	ReconcileTimeout time.Duration
	// CallTimeout bounds the reconciler's Docker calls outside a pass: the container list of
	// the resync and of the event stream's reconnect. Default 30s.
	CallTimeout time.Duration
	// PullTimeout bounds one image pull, which runs in the background (one per image at a
	// time); the replicas waiting for it are reported ImagePulling with its progress. Default
	// 10m.
	PullTimeout time.Duration
	// PeerFetch, when set, is tried before the registry for an image missing here: another
	// node's copy (peerpull.go), within the same PullTimeout. Default nil: registry only.
	PeerFetch PeerFetch
	// SlowReconcile: a pass taking at least this long is logged at Warn with the service and
	// its duration. Default 5s.
	SlowReconcile time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *runtime.Metrics
	// Events receives the replicas' Events: Pulling, Pulled, FailedPull, Started, Exited,
	// Restarted, Unhealthy, FailedCreate (events.go). Nil: none.
	Events *events.Recorder
	// Restored are the replicas the previous run of this agent published before it stopped
	// for a restart (gossip.Restored). The reconciler starts from them: publishing one Service
	// keeps the others' replicas until each has been reconciled, and an adopted container whose
	// agent-side probe had passed starts healthy, not "starting". Default none.
	Restored []observed.Replica
}

func (c *Config) validate() error {
	switch {
	case c.Node == "":
		return errors.New("node reconciler: config: Node is required")
	case c.Store == nil:
		return errors.New("node reconciler: config: Store is required")
	case c.Docker == nil:
		return errors.New("node reconciler: config: Docker is required")
	case c.Publish == nil:
		return errors.New("node reconciler: config: Publish is required")
	}
	if c.Advertise == "" {
		c.Advertise = "127.0.0.1"
	}
	if c.PublishIP == "" {
		c.PublishIP = "0.0.0.0"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	switch {
	case c.DrainDelay == 0:
		c.DrainDelay = 5 * time.Second
	case c.DrainDelay < 0:
		c.DrainDelay = 0
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 60 * time.Second
	}
	if c.MinReady <= 0 {
		c.MinReady = time.Second
	}
	if c.CrashLoopThreshold <= 0 {
		c.CrashLoopThreshold = 3
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.ReconcileTimeout <= 0 {
		c.ReconcileTimeout = 3 * time.Minute
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.PullTimeout <= 0 {
		c.PullTimeout = 10 * time.Minute
	}
	if c.SlowReconcile <= 0 {
		c.SlowReconcile = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HostAccess.Node == "" {
		c.HostAccess.Node = c.Node
	}
	if c.HostAccess.Resolve == nil {
		c.HostAccess.Resolve = filepath.EvalSymlinks
	}
	if c.Secret == nil {
		st := c.Store
		c.Secret = func(ctx context.Context, name, key string) (string, error) {
			// From the local replica, like the Service itself: creating a container must never
			// need quorum (a linearizable read waits up to the store's request timeout when
			// the cluster has none, e.g. while nodes come back one by one after a reboot).
			o, err := st.Get(ctx, v1.KindSecret, name, store.Stale())
			if errors.Is(err, store.ErrNotFound) {
				return "", docker.ErrSecretNotFound
			}
			if err != nil {
				return "", err
			}
			v, ok := o.(*v1.Secret).Spec.Data[key]
			if !ok {
				return "", docker.ErrSecretNotFound
			}
			return v, nil
		}
	}
	return nil
}

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

	mu sync.Mutex
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
	r.prober = newProber(wake, cfg.Now)
	r.egress = newEgressMonitor(wake, cfg.Now, r.log)
	r.prober.prior = map[string]v1.Health{}
	for _, rep := range cfg.Restored {
		r.published[rep.Service] = append(r.published[rep.Service], rep)
		if rep.ContainerID != "" {
			r.prober.prior[rep.ContainerID] = rep.Health
		}
	}
	r.puller = newPuller(peersFirst(cfg.PeerFetch, cfg.Docker.PullImage, &r.sources, r.log), cfg.PullTimeout, cfg.Now, r.log, wake)
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
	loop := runtime.New[string]("node", r, runtime.Options{Workers: r.cfg.Workers, Logger: r.cfg.Logger, Metrics: r.cfg.LoopMetrics, MaxDelay: 10 * time.Second})
	r.mu.Lock()
	r.enqueue = loop.Enqueue
	r.mu.Unlock()
	r.puller.setBase(ctx)
	defer r.prober.stopAll()
	defer r.egress.stopAll()
	go runtime.ListWatch(ctx, r.cfg.Store, v1.KindService, r.log, func(ev store.Event) { loop.Enqueue(ev.Object.GetMetadata().Name) })
	go r.watchEvents(ctx, loop)
	for _, rep := range r.cfg.Restored {
		// Each restored Service is reconciled once, so that one deleted meanwhile is withdrawn.
		loop.Enqueue(rep.Service)
	}
	go func() {
		t := time.NewTicker(r.cfg.Resync)
		defer t.Stop()
		for {
			r.enqueueAll(ctx, loop)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	loop.Run(ctx)
}

// enqueueAll enqueues every Service of the store and every service found on this node's
// container labels. It runs on the resync timer and after the event stream reconnects, outside
// the workers, and is bounded by CallTimeout: an engine that does not answer must not stop the
// resync or the reconnect loop.
func (r *Reconciler) enqueueAll(parent context.Context, loop *runtime.Loop[string]) {
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
func (r *Reconciler) watchEvents(ctx context.Context, loop *runtime.Loop[string]) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, errc := r.cfg.Docker.Events(ctx, map[string]string{docker.LabelNode: r.cfg.Node})
		start := r.cfg.Now()
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
		if r.cfg.Now().Sub(start) > 10*time.Second {
			delay = 100 * time.Millisecond
		}
		sleep(ctx, delay)
		delay = min(delay*2, 5*time.Second)
		// Whatever happened while the stream was down, converge again.
		r.enqueueAll(ctx, loop)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
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
	start := r.cfg.Now()
	cause := fmt.Errorf("reconcile service %q: %w after %s", name, errReconcileTimeout, r.cfg.ReconcileTimeout)
	pctx, cancel := context.WithTimeoutCause(ctx, r.cfg.ReconcileTimeout, cause)
	defer cancel()
	res, err := r.reconcile(pctx, name, start)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(pctx), cause) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	if took := r.cfg.Now().Sub(start); took >= r.cfg.SlowReconcile {
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
	health, minReadyWait := r.health(name, svc, cs, r.cfg.Now())
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

// seen records cs as the last container list of service name, and stops what the reconciler
// kept for containers of it that are gone, even when they were removed behind its back (a
// `docker rm`, an engine reset): their probes and drain entries.
func (r *Reconciler) seen(name string, cs []docker.Container) {
	keep := make(map[string]bool, len(cs))
	for _, c := range cs {
		if c.Running {
			keep[c.ID] = true
		}
	}
	r.prober.forgetService(name, keep)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(cs) == 0 {
		delete(r.lastSeen, name)
	} else {
		r.lastSeen[name] = append([]docker.Container(nil), cs...)
	}
	for id, d := range r.draining {
		if d.service == name && !keep[id] {
			delete(r.draining, id)
		}
	}
}

// drainsOf returns when the drains of service name's containers started. A container that is
// desired again (the Service re-created or rolled back while it drained: same index, same spec
// hash) is not draining any more: it is adopted as it is. Before, its entry stayed and it was
// published as terminating for good.
func (r *Reconciler) drainsOf(name string, cs []docker.Container, desired map[int32]string) map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Time{}
	for _, c := range cs {
		d, ok := r.draining[c.ID]
		if !ok {
			continue
		}
		if idx, ok := replicaIndex(c); ok && desired[idx] != "" && desired[idx] == c.Labels[docker.LabelSpecHash] {
			delete(r.draining, c.ID)
			r.log.Info("container desired again, drain cancelled", "service", name, "index", idx, "container", c.ID)
			continue
		}
		out[c.ID] = d.since
	}
	return out
}

// drain is a container being drained before it is removed.
type drain struct {
	service string
	since   time.Time
}

// account updates replica states from what Docker shows: a new exit counts as a failure, and
// a replica running and healthy for a while gets a clean slate.
func (r *Reconciler) account(ctx context.Context, name string, svc *v1.Service, cs []docker.Container, now time.Time) map[int32]*replicaState {
	r.mu.Lock()
	states := r.states[name]
	if states == nil {
		states = map[int32]*replicaState{}
		r.states[name] = states
	}
	r.mu.Unlock()
	for _, c := range cs {
		idx, ok := replicaIndex(c)
		if !ok {
			continue
		}
		r.mu.Lock()
		st := states[idx]
		if st == nil {
			st = &replicaState{}
			states[idx] = st
		}
		r.mu.Unlock()
		switch {
		case !c.Running && (c.State == "exited" || c.State == "dead") && c.FinishedAt.After(st.lastFinished) && !c.FinishedAt.Before(c.StartedAt):
			// The last lines of this run only.
			tail, _ := r.cfg.Docker.LogTail(ctx, c.ID, c.StartedAt, 5)
			r.mu.Lock()
			st.lastFinished = c.FinishedAt
			st.failures++
			st.lastFailure = now
			st.exitCode = c.ExitCode
			st.reason = "Exited"
			if st.failures >= r.cfg.CrashLoopThreshold {
				st.reason = v1.ReasonCrashLoop
			}
			st.message = fmt.Sprintf("exit code %d", c.ExitCode)
			if c.OOMKilled {
				st.message += " (OOM killed)"
			}
			if tail != "" {
				st.message += ": " + tail
			}
			r.mu.Unlock()
			oom := ""
			if c.OOMKilled {
				oom = " (OOM killed)"
			}
			r.event(name, v1.EventWarning, v1.EventExited, "replica %d exited with code %d%s", idx, c.ExitCode, oom)
		case c.Running && st.failures > 0 && now.Sub(c.StartedAt) > max(10*time.Second, 2*r.backoff(st.failures)):
			r.mu.Lock()
			if h, _ := r.prober.status(c.ID); h != v1.HealthUnhealthy && c.Health != "unhealthy" {
				*st = replicaState{lastFinished: st.lastFinished}
			}
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int32]*replicaState, len(states))
	for k, v := range states {
		c := *v
		out[k] = &c
	}
	return out
}

// health returns each container's health, starting the agent's probes where needed.
func (r *Reconciler) health(name string, svc *v1.Service, cs []docker.Container, now time.Time) (map[string]v1.Health, time.Duration) {
	out := map[string]v1.Health{}
	var wait time.Duration
	var stop []string
	for _, c := range cs {
		// The engine answers: outage probes (observe.go) have no say any more.
		r.prober.forgetFallback(c.ID)
		var spec *v1.ServiceSpec
		if svc != nil {
			spec, _ = spechash.Lookup(svc, c.Labels[docker.LabelSpecHash])
		}
		hc := (*v1.HealthCheck)(nil)
		if spec != nil {
			d := (&v1.Service{Spec: *spec}).DeepCopyObject().(*v1.Service)
			d.Default()
			spec, hc = &d.Spec, d.Spec.HealthCheck
		}
		switch {
		case !c.Running:
			stop = append(stop, c.ID)
			out[c.ID] = v1.HealthNone
		case c.Health != "": // Docker's HEALTHCHECK (exec)
			out[c.ID] = v1.Health(c.Health)
		case hc != nil && (hc.HTTP != nil || hc.TCP != nil):
			r.prober.ensure(name, c, spec)
			h, _ := r.prober.status(c.ID)
			out[c.ID] = h
		case hc == nil && spec == nil:
			// Unknown spec (an old replica whose revision is gone): keep what we knew.
			h, _ := r.prober.status(c.ID)
			if h == "" {
				h = v1.HealthNone
			}
			out[c.ID] = h
		default:
			out[c.ID] = v1.HealthNone
			if left := c.StartedAt.Add(r.cfg.MinReady).Sub(now); left > 0 {
				out[c.ID] = v1.HealthStarting
				if wait == 0 || left < wait {
					wait = left
				}
			}
		}
	}
	r.prober.forgetIDs(stop...)
	return out, wait
}

// apply carries out the plan, up to 4 container operations at once. Failures of one replica
// (missing image, port conflict...) are recorded in its state and shown in status; only the
// daemon being unreachable fails the whole pass.
func (r *Reconciler) apply(ctx context.Context, name string, svc *v1.Service, acts []Action, cs []docker.Container, now time.Time) error {
	byID := map[string]docker.Container{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	if svc != nil {
		for _, a := range acts {
			if a.Kind == ActCreate {
				if err := r.ensureShared(ctx, svc, a.SpecHash); err != nil && errors.Is(err, docker.ErrUnavailable) {
					return err
				}
				break
			}
		}
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var unavailable error
	for _, a := range acts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := r.do(ctx, name, svc, a, byID[a.ContainerID], now)
			outcome := "ok"
			if err != nil {
				outcome = "error"
				r.log.Warn("container action failed", "service", name, "action", a.Kind, "index", a.Index, "err", err)
			}
			r.actions.WithLabelValues(string(a.Kind), outcome).Inc()
			if errors.Is(err, docker.ErrUnavailable) {
				mu.Lock()
				unavailable = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return unavailable
}

// ensureShared creates the networks and named volumes of the spec with hash.
func (r *Reconciler) ensureShared(ctx context.Context, svc *v1.Service, hash string) error {
	spec, ok := spechash.Lookup(svc, hash)
	if !ok {
		return nil
	}
	for _, n := range spec.Networks {
		if err := r.cfg.Docker.EnsureNetwork(ctx, n); err != nil {
			return err
		}
	}
	for _, v := range spec.Volumes {
		if !strings.HasPrefix(v.Source, "/") {
			if err := r.cfg.Docker.EnsureVolume(ctx, v.Source); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reconciler) state(name string, idx int32) *replicaState {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.states[name]
	if m == nil {
		m = map[int32]*replicaState{}
		r.states[name] = m
	}
	st := m[idx]
	if st == nil {
		st = &replicaState{}
		m[idx] = st
	}
	return st
}

// fail records a failed attempt on replica idx.
func (r *Reconciler) fail(name string, idx int32, reason string, err error, now time.Time) {
	st := r.state(name, idx)
	r.mu.Lock()
	defer r.mu.Unlock()
	st.failures++
	st.lastFailure = now
	st.reason, st.message = reason, err.Error()
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, docker.ErrImageNotFound):
		return v1.ReasonImageNotFound
	case errors.Is(err, docker.ErrPortConflict):
		return v1.ReasonPortConflict
	case errors.Is(err, docker.ErrVolumeSource):
		return v1.ReasonVolumeNotFound
	case errors.Is(err, docker.ErrSecretNotFound):
		return "SecretNotFound"
	case errors.Is(err, docker.ErrFileSourceNotFound):
		return v1.ReasonFileSourceNotFound
	}
	return "CreateFailed"
}

func (r *Reconciler) do(ctx context.Context, name string, svc *v1.Service, a Action, c docker.Container, now time.Time) error {
	d := r.cfg.Docker
	switch a.Kind {
	case ActCreate:
		if svc == nil {
			return nil
		}
		spec, ok := spechash.Lookup(svc, a.SpecHash)
		if !ok {
			err := fmt.Errorf("spec %s is no longer known to this node", a.SpecHash)
			r.failCreate(name, a.Index, "SpecUnavailable", err, now)
			return err
		}
		s := (&v1.Service{Metadata: svc.Metadata, Spec: *spec}).DeepCopyObject().(*v1.Service)
		s.Default()
		if err := r.hostAccessDenied(name, &s.Spec, a.Index, now); err != nil {
			return err
		}
		cfg, err := docker.BuildCreateConfig(s, a.Index, a.SpecHash, docker.BuildOptions{
			Node: r.cfg.Node, PublishIP: r.cfg.PublishIP, NamePrefix: r.cfg.NamePrefix,
			StopTimeoutSeconds: int(r.cfg.StopTimeout / time.Second),
			Secret:             func(n, k string) (string, error) { return r.cfg.Secret(ctx, n, k) },
			MeshDNS:            r.cfg.MeshDNS, MeshDomain: r.cfg.MeshDomain,
			NetnsOwner: a.NetnsOwner,
		})
		if err != nil {
			r.failCreate(name, a.Index, reasonOf(err), err, now)
			return err
		}
		files, err := docker.ResolveFiles(ctx, r.cfg.Store, "spec.files", s.Spec.Files)
		if err != nil {
			r.failCreate(name, a.Index, reasonOf(err), err, now)
			return err
		}
		if ready, err := r.image(ctx, name, a.Index, s.Spec.Image, now); !ready {
			return err
		}
		id, err := d.Create(ctx, cfg)
		if errors.Is(err, docker.ErrNameConflict) {
			// A container of another node identity (or not ours) holds the name on this
			// engine: never touch it, use another name.
			cfg.Name += "-" + randomSuffix()
			id, err = d.Create(ctx, cfg)
		}
		if err != nil {
			if errors.Is(err, docker.ErrUnavailable) {
				return err
			}
			if id != "" {
				_ = d.Remove(ctx, id)
			}
			r.failCreate(name, a.Index, reasonOf(err), err, now)
			return err
		}
		if err := r.copyFiles(ctx, id, files); err != nil {
			// A container without its files must never start: remove it, try again later.
			_ = d.Remove(ctx, id)
			if !errors.Is(err, docker.ErrUnavailable) {
				r.failCreate(name, a.Index, reasonOf(err), err, now)
			}
			return err
		}
		if err := d.Start(ctx, id); err != nil {
			if !errors.Is(err, docker.ErrUnavailable) {
				// Leave the container: the next pass starts it again after the backoff.
				r.failCreate(name, a.Index, reasonOf(err), err, now)
			}
			return err
		}
		r.clearReason(name, a.Index)
		r.event(name, v1.EventNormal, v1.EventStarted, "replica %d started (image %s)", a.Index, s.Spec.Image)
		return nil
	case ActStart:
		// A container created under other flags (the agent restarted with stricter ones) is not
		// started again; a running one is left alone.
		if spec, ok := specOf(svc, c); ok {
			if err := r.hostAccessDenied(name, spec, a.Index, now); err != nil {
				return err
			}
		}
		if err := d.Start(ctx, a.ContainerID); err != nil {
			if !errors.Is(err, docker.ErrUnavailable) {
				r.failCreate(name, a.Index, reasonOf(err), err, now)
			}
			return err
		}
		r.started(name, a.Index)
		return nil
	case ActRestart:
		r.fail(name, a.Index, v1.ReasonUnhealthy, errors.New("health check failing, restarted"), now)
		st := r.state(name, a.Index)
		r.mu.Lock()
		if st.failures >= r.cfg.CrashLoopThreshold {
			st.reason = v1.ReasonCrashLoop
			st.message = "unhealthy after every restart"
		}
		r.mu.Unlock()
		probe := ""
		if _, msg := r.prober.status(a.ContainerID); msg != "" {
			r.mu.Lock()
			st.message += ": " + msg
			r.mu.Unlock()
			probe = ": " + msg
		}
		r.event(name, v1.EventWarning, v1.EventUnhealthy, "replica %d failed its health check, restarting%s", a.Index, probe)
		if err := d.Stop(ctx, a.ContainerID, r.stopTimeout(svc, c)); err != nil {
			return err
		}
		r.prober.forgetIDs(a.ContainerID)
		return d.Start(ctx, a.ContainerID)
	case ActDrain:
		r.mu.Lock()
		r.draining[a.ContainerID] = drain{service: name, since: now}
		r.mu.Unlock()
		r.log.Info("container no longer belongs here, draining", "service", name, "index", a.Index, "container", a.ContainerID, "for", r.cfg.DrainDelay)
		return nil
	case ActRemove:
		if a.Why != "" {
			r.log.Warn("removing a container sharing a gateway's namespace at once", "service", name, "index", a.Index, "container", shortID(a.ContainerID), "why", a.Why)
			if a.Why == "namespace owner restarted" || a.Why == "namespace owner recreated" {
				r.egress.steps.WithLabelValues(name, "recreate-dependent").Inc()
			}
		}
		if c.Running {
			if err := d.Stop(ctx, a.ContainerID, r.stopTimeout(svc, c)); err != nil && !errors.Is(err, docker.ErrNotFound) {
				return err
			}
		}
		if err := d.Remove(ctx, a.ContainerID); err != nil {
			return err
		}
		r.prober.forgetIDs(a.ContainerID)
		r.mu.Lock()
		delete(r.draining, a.ContainerID)
		r.mu.Unlock()
		return nil
	}
	return nil
}

// hostAccessDenied checks spec against this agent's host-access policy: a refusal is recorded as
// replica idx's failure (HostAccessDenied, naming the field, the node and the flag) and returned.
func (r *Reconciler) hostAccessDenied(name string, spec *v1.ServiceSpec, idx int32, now time.Time) error {
	errs := r.cfg.HostAccess.Check(spec)
	if len(errs) == 0 {
		return nil
	}
	err := errs.ToAggregate("services", name)
	r.failCreate(name, idx, v1.ReasonHostAccessDenied, err, now)
	return err
}

// hostNetworked reports whether c runs in the node's network namespace (spec.hostNetwork):
// Docker lists it on the "host" network, without an address of its own.
func hostNetworked(c docker.Container) bool {
	_, ok := c.Networks["host"]
	return ok
}

// specOf is the spec container c of svc runs (by its spec-hash label), if still known.
// stopTimeout is how long a stop of container c of svc waits before SIGKILL: the
// spec.stopGracePeriod of the spec it runs, else Config.StopTimeout (also when its Service is
// gone: the agent does not read the container's own config back).
func (r *Reconciler) stopTimeout(svc *v1.Service, c docker.Container) time.Duration {
	if spec, ok := specOf(svc, c); ok && spec.StopGracePeriod != nil {
		return spec.StopGracePeriod.Duration
	}
	return r.cfg.StopTimeout
}

func specOf(svc *v1.Service, c docker.Container) (*v1.ServiceSpec, bool) {
	if svc == nil {
		return nil, false
	}
	return spechash.Lookup(svc, c.Labels[docker.LabelSpecHash])
}

// image reports whether ref is present for replica idx of service name. When it is not, a pull
// runs in the background (one per image, shared by every service waiting for it) and the
// replica is marked ImagePulling with its progress until the pull ends and wakes the service;
// a failed pull is recorded as the replica's failure, once, and backs off like any other.
func (r *Reconciler) image(ctx context.Context, name string, idx int32, ref string, now time.Time) (bool, error) {
	ok, err := r.cfg.Docker.HasImage(ctx, ref)
	if err != nil {
		if !errors.Is(err, docker.ErrUnavailable) {
			r.fail(name, idx, reasonOf(err), err, now)
		}
		return false, err
	}
	st := r.state(name, idx)
	r.mu.Lock()
	waited := st.pulling != ""
	r.mu.Unlock()
	if ok {
		r.mu.Lock()
		st.pulling = ""
		r.mu.Unlock()
		if waited {
			if src := r.sources.get(ref); src.node != "" {
				r.event(name, v1.EventNormal, v1.EventPulled, "pulled image %s from node %s (%.1f MB)", ref, src.node, float64(src.bytes)/1e6)
			} else {
				r.event(name, v1.EventNormal, v1.EventPulled, "pulled image %s", ref)
			}
		}
		return true, nil
	}
	ps := r.puller.request(ref, name)
	r.mu.Lock()
	st.pulling = ""
	r.mu.Unlock()
	if ps.Err != nil {
		if !errors.Is(ps.Err, docker.ErrUnavailable) {
			r.fail(name, idx, reasonOf(ps.Err), ps.Err, now)
			r.event(name, v1.EventWarning, v1.EventFailedPull, "replica %d: %v", idx, ps.Err)
		}
		return false, ps.Err
	}
	if !waited {
		r.event(name, v1.EventNormal, v1.EventPulling, "pulling image %s", ref)
	}
	msg := fmt.Sprintf("pulling image %s for %s", ref, now.Sub(ps.Started).Round(time.Second))
	if src := r.sources.get(ref); src.node != "" {
		msg = fmt.Sprintf("pulling image %s from node %s for %s: %.1f MB", ref, src.node, now.Sub(ps.Started).Round(time.Second), float64(src.bytes)/1e6)
	} else if ps.Progress.Layers > 0 {
		msg += ": " + ps.Progress.String()
	}
	r.mu.Lock()
	st.pulling = msg
	r.mu.Unlock()
	return false, nil
}

func randomSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *Reconciler) clearReason(name string, idx int32) {
	st := r.state(name, idx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.reason != "Exited" && st.reason != v1.ReasonCrashLoop && st.reason != v1.ReasonUnhealthy {
		st.reason, st.message = "", ""
	}
}

// publish records the service's replicas on this node and hands all of them to Publish. It
// reports whether a replica waits for its image.
func (r *Reconciler) publish(name string, svc *v1.Service, desired map[int32]string, cs []docker.Container, health map[string]v1.Health) bool {
	return r.publishWith(name, svc, desired, cs, health, false)
}

// publishWith is publish; blind says cs is the last list seen, the engine not answering now.
func (r *Reconciler) publishWith(name string, svc *v1.Service, desired map[int32]string, cs []docker.Container, health map[string]v1.Health, blind bool) (pulling bool) {
	now := r.cfg.Now()
	var ports []v1.ServicePort
	if svc != nil {
		ports = svc.Spec.Ports
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	states := r.states[name]
	scrub := r.scrubbers[name]
	seen := map[int32]bool{}
	var out []observed.Replica
	// Observed state holds one replica per index: prefer the container that should be there,
	// then a running one.
	isDesired := func(c docker.Container) bool {
		idx, ok := replicaIndex(c)
		h, want := desired[idx]
		return ok && want && c.Labels[docker.LabelSpecHash] == h
	}
	cs = append([]docker.Container(nil), cs...)
	sort.SliceStable(cs, func(i, j int) bool {
		if isDesired(cs[i]) != isDesired(cs[j]) {
			return isDesired(cs[i])
		}
		return cs[i].Running && !cs[j].Running
	})
	for _, c := range cs {
		idx, ok := replicaIndex(c)
		if !ok || seen[idx] {
			continue
		}
		isDesired := isDesired(c)
		_, draining := r.draining[c.ID]
		if !isDesired && !draining && c.Running {
			draining = true // about to be removed
		}
		if !isDesired && !c.Running {
			continue
		}
		seen[idx] = true
		rep := observed.Replica{Service: name, Index: idx, Node: r.cfg.Node, ContainerID: c.ID,
			SpecHash: c.Labels[docker.LabelSpecHash], Health: health[c.ID], UpdatedAt: now}
		switch {
		case draining:
			rep.State = v1.ReplicaTerminating
		case c.Running:
			rep.State = v1.ReplicaRunning
		case c.State == "created":
			rep.State = v1.ReplicaCreated
		default:
			rep.State = v1.ReplicaExited
			rep.ExitCode = c.ExitCode
		}
		if rep.Health == "" {
			rep.Health = v1.HealthStarting
		}
		if c.Running && hostNetworked(c) {
			// Nothing is published: the container listens on the node's own ports.
			for _, p := range ports {
				if rep.Ports == nil {
					rep.Ports = map[string]string{}
				}
				rep.Ports[observed.PortKey(p.ContainerPort, p.Protocol)] = net.JoinHostPort(r.cfg.Advertise, strconv.Itoa(int(p.ContainerPort)))
			}
		} else if c.Running {
			for _, p := range portsOf(ports, c) {
				if hp, ok := c.Ports[p]; ok {
					if rep.Ports == nil {
						rep.Ports = map[string]string{}
					}
					rep.Ports[p] = r.cfg.Advertise + ":" + hp.Port
				}
			}
		}
		if st := states[idx]; st != nil {
			rep.Restarts = st.failures
			// A replica that is ready again shows no stale failure (its restart count stays).
			if ready := c.Running && (rep.Health == v1.HealthHealthy || rep.Health == v1.HealthNone); !ready {
				rep.Reason, rep.Message = st.reason, st.message
			}
			if st.reason == v1.ReasonCrashLoop && !c.Running {
				rep.State = v1.ReplicaFailed
				rep.ExitCode = st.exitCode
			}
		}
		if blind && rep.Reason == "" && c.Running && !rep.Ready() {
			rep.Reason, rep.Message = v1.ReasonEngineUnavailable, "the Docker engine does not answer: shown as last seen"
			if rep.Health == v1.HealthUnknown {
				rep.Message += ", health unknown"
			}
		}
		if rep.Reason == "" && c.Running && rep.Health == v1.HealthUnhealthy {
			rep.Reason = v1.ReasonUnhealthy
			if _, msg := r.prober.status(c.ID); msg != "" {
				rep.Message = msg
			} else if c.HealthLog != "" {
				rep.Message = c.HealthLog
			}
		}
		if eg := r.egress.state(c.ID); eg.checked && c.Running && rep.State == v1.ReplicaRunning {
			switch {
			case eg.failed:
				rep.Health, rep.Reason, rep.Message = v1.HealthUnhealthy, v1.ReasonEgressFailed, "egress check failing after every healing step: "+eg.summary
			case !eg.ready && eg.summary == "":
				if rep.Health == v1.HealthHealthy || rep.Health == v1.HealthNone {
					rep.Health = v1.HealthStarting
				}
			case !eg.ready:
				rep.Health, rep.Reason, rep.Message = v1.HealthUnhealthy, v1.ReasonEgressUnhealthy, eg.summary
			}
		}
		rep.Message = scrub.Scrub(rep.Message)
		out = append(out, rep)
	}
	// Desired replicas without a container: pending, or failing to be created.
	for idx, hash := range desired {
		if seen[idx] {
			continue
		}
		rep := observed.Replica{Service: name, Index: idx, Node: r.cfg.Node, SpecHash: hash, State: v1.ReplicaPending, Health: v1.HealthNone, UpdatedAt: now}
		if why := r.gated[name]; why != "" {
			// Fail closed: not run while no gateway container on this node is usable.
			rep.Reason, rep.Message = v1.ReasonGatewayUnhealthy, why
		} else if st := states[idx]; st != nil && st.pulling != "" {
			// Waiting for its image: pending, not failed (the scheduler does not count it
			// against the rollout), with the pull's progress for ctl describe.
			rep.Reason, rep.Message, rep.Restarts = v1.ReasonImagePulling, st.pulling, st.failures
			pulling = true
		} else if st != nil && st.reason != "" {
			rep.State, rep.Reason, rep.Message, rep.Restarts = v1.ReplicaFailed, st.reason, st.message, st.failures
		}
		rep.Message = scrub.Scrub(rep.Message)
		out = append(out, rep)
	}
	// Forget states of replicas no longer here.
	for idx := range states {
		if _, ok := desired[idx]; !ok {
			delete(states, idx)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	if len(out) == 0 {
		delete(r.published, name)
		delete(r.states, name)
		delete(r.scrubbers, name)
	} else {
		r.published[name] = out
	}
	var all []observed.Replica
	for _, rs := range r.published {
		all = append(all, rs...)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Service != all[j].Service {
			return all[i].Service < all[j].Service
		}
		return all[i].Index < all[j].Index
	})
	r.cfg.Publish(all)
	return pulling
}

// portsOf lists the port keys ("8080/tcp") of the spec, or every published port of c.
func portsOf(ports []v1.ServicePort, c docker.Container) []string {
	if len(ports) == 0 {
		out := make([]string, 0, len(c.Ports))
		for k := range c.Ports {
			out = append(out, k)
		}
		return out
	}
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, observed.PortKey(p.ContainerPort, p.Protocol))
	}
	return out
}

// Replicas returns what the reconciler last published (for the agent's debug endpoints).
func (r *Reconciler) Replicas() []observed.Replica {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []observed.Replica
	for _, rs := range r.published {
		all = append(all, rs...)
	}
	return all
}

package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/egress"
	"github.com/constellation-sh/constellation/pkg/store"
	"k8s.io/utils/clock"
)

// Execer runs a command in a container (the reconnect hook); *docker.Client implements it.
// Optional: an engine without it skips the reconnect step.
type Execer interface {
	ExecRun(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, string, error)
}

var _ Execer = (*docker.Client)(nil)

// egressMonitor runs the egress checks of the gateway replicas on this node (one goroutine per
// running container with a spec.egressCheck) and keeps one egress.Healer per container.
type egressMonitor struct {
	wake  func(service string)
	clock clock.Clock
	log   *slog.Logger

	mu sync.Mutex
	// probes by container ID; guarded by mu.
	probes map[string]*egressProbe
	// dependents maps a namespace owner Service to the Services sharing its namespace that
	// this node reconciled; guarded by mu.
	dependents map[string]map[string]bool

	results *prometheus.CounterVec
	steps   *prometheus.CounterVec
	healthy *prometheus.GaugeVec
}

type egressProbe struct {
	key     string // container ID + start time + check: a restart or a new check is a new probe
	service string
	index   int32
	cancel  context.CancelFunc
	healer  *egress.Healer // guarded by egressMonitor.mu
	passed  bool           // a probe passed since the container (re)started; guarded by mu
}

func newEgressMonitor(wake func(string), clk clock.Clock, log *slog.Logger) *egressMonitor {
	return &egressMonitor{
		wake: wake, clock: clk, log: log,
		probes: map[string]*egressProbe{}, dependents: map[string]map[string]bool{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_egress_probes_total", Help: "Egress check probes by service and result (ok, fail).",
		}, []string{"service", "result"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_egress_heal_steps_total", Help: "Egress healing steps taken by service and step (reconnect, restart, recreate-dependent, replace).",
		}, []string{"service", "step"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "constellation_egress_healthy", Help: "1 while the egress check of a gateway replica on this node passes.",
		}, []string{"service", "index"}),
	}
}

func (m *egressMonitor) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.results, m.steps, m.healthy}
}

// egressTarget says how the probe of container c reaches its egress.
func egressTarget(c docker.Container, spec *v1.ServiceSpec, check v1.EgressCheck) (egress.Target, error) {
	via, ok := check.ParseVia()
	if !ok {
		return egress.Target{}, fmt.Errorf("spec.egressCheck.via: invalid %q", check.Via)
	}
	if via.Scheme == "" {
		if c.Pid <= 0 {
			return egress.Target{}, fmt.Errorf("container %s has no process", shortID(c.ID))
		}
		return egress.Target{Dial: egress.NetnsDialer(c.Pid)}, nil
	}
	p, ok := spec.ResolvePort(via.Port, v1.ProtocolTCP)
	if !ok {
		return egress.Target{}, fmt.Errorf("spec.egressCheck.via: no tcp port %q", via.Port)
	}
	if via.InNamespace {
		if c.Pid <= 0 {
			return egress.Target{}, fmt.Errorf("container %s has no process", shortID(c.ID))
		}
		proxy := &url.URL{Scheme: via.Scheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(p.ContainerPort)))}
		return egress.Target{Dial: egress.NetnsDialer(c.Pid), Proxy: proxy}, nil
	}
	addr, err := containerAddr(c, p.ContainerPort)
	if err != nil {
		return egress.Target{}, err
	}
	return egress.Target{Proxy: &url.URL{Scheme: via.Scheme, Host: addr}}, nil
}

// ensure starts probing container c of service name (running, with spec's egress check) unless
// it already is.
func (m *egressMonitor) ensure(name string, idx int32, c docker.Container, spec *v1.ServiceSpec) {
	check := spec.EgressCheck.Defaults()
	// By value: the spec is a fresh copy on every pass (pointers differ).
	cb, _ := json.Marshal(check)
	key := c.ID + "/" + c.StartedAt.String() + "/" + string(cb)
	m.mu.Lock()
	if p, ok := m.probes[c.ID]; ok {
		if p.key == key {
			m.mu.Unlock()
			return
		}
		p.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &egressProbe{key: key, service: name, index: idx, cancel: cancel,
		healer: egress.NewHealer(egress.DefaultPolicy(check.Interval.Duration, int(*check.FailureThreshold), len(check.Reconnect) > 0))}
	m.probes[c.ID] = p
	m.mu.Unlock()
	go m.run(ctx, p, c, spec, check)
}

func (m *egressMonitor) run(ctx context.Context, p *egressProbe, c docker.Container, spec *v1.ServiceSpec, check v1.EgressCheck) {
	target, terr := egressTarget(c, spec, check)
	// The first probe soon after start (the tunnel may still be connecting: failures before
	// the threshold do not count), then every interval.
	delay := min(200*time.Millisecond, check.Interval.Duration)
	t := m.clock.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		began := m.clock.Now()
		var res egress.Result
		if terr != nil {
			res = egress.Result{Summary: terr.Error()}
		} else {
			res = egress.Probe(ctx, check, target, m.clock.Now)
		}
		if ctx.Err() != nil {
			return
		}
		outcome := "ok"
		if !res.OK {
			outcome = "fail"
		}
		m.results.WithLabelValues(p.service, outcome).Inc()
		m.mu.Lock()
		wasReady := p.passed && p.healer.Healthy()
		changed := p.healer.Observe(res)
		if res.OK {
			p.passed = true
		}
		ready := p.passed && p.healer.Healthy()
		m.mu.Unlock()
		if ready {
			m.healthy.WithLabelValues(p.service, strconv.Itoa(int(p.index))).Set(1)
		} else {
			m.healthy.WithLabelValues(p.service, strconv.Itoa(int(p.index))).Set(0)
		}
		if changed || ready != wasReady {
			if ready {
				m.log.Info("egress check passes", "service", p.service, "index", p.index, "container", shortID(c.ID), "result", res.Summary)
			} else {
				m.log.Warn("egress check failing", "service", p.service, "index", p.index, "container", shortID(c.ID), "result", res.Summary)
			}
			m.wakeChain(p.service)
		}
		// A fixed cadence: a probe that ran into its timeout does not push the next one back,
		// so threshold failures take interval × threshold, not (interval + timeout) × threshold.
		t.Reset(max(check.Interval.Duration-m.clock.Since(began), time.Millisecond))
	}
}

// wakeChain enqueues a gateway Service and every Service sharing its namespace here.
func (m *egressMonitor) wakeChain(owner string) {
	m.wake(owner)
	for _, d := range m.dependentsOf(owner) {
		m.wake(d)
	}
}

// gatewayState is what the reconciler knows of one gateway container's egress.
type gatewayState struct {
	// checked: the container has a probe (its service has an egress check).
	checked bool
	// ready: a probe passed since the container started and the check is not failing.
	ready   bool
	failed  bool // the local healing steps are exhausted (EgressFailed)
	summary string
}

func (m *egressMonitor) state(id string) gatewayState {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.probes[id]
	if !ok {
		return gatewayState{}
	}
	return gatewayState{checked: true, ready: p.passed && p.healer.Healthy(), failed: p.healer.Failed(), summary: p.healer.Last().Summary}
}

// next asks container id's healer for the step due now.
func (m *egressMonitor) next(id string, now time.Time) (egress.StepKind, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.probes[id]
	if !ok {
		return egress.StepNone, 0
	}
	return p.healer.Next(now)
}

func (m *egressMonitor) took(id string, step egress.StepKind, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.probes[id]; ok {
		p.healer.Took(step, now)
		if step == egress.StepRestart {
			p.passed = false
		}
		m.steps.WithLabelValues(p.service, step.String()).Inc()
	}
}

// forgetService stops the probes of service name's containers not in keep.
func (m *egressMonitor) forgetService(name string, keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, p := range m.probes {
		if p.service == name && !keep[id] {
			p.cancel()
			delete(m.probes, id)
			m.healthy.DeleteLabelValues(p.service, strconv.Itoa(int(p.index)))
		}
	}
}

func (m *egressMonitor) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, p := range m.probes {
		p.cancel()
		delete(m.probes, id)
	}
}

func (m *egressMonitor) setDependent(owner, dep string, is bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for o, deps := range m.dependents {
		if o != owner || !is {
			delete(deps, dep)
		}
	}
	if is {
		if m.dependents[owner] == nil {
			m.dependents[owner] = map[string]bool{}
		}
		m.dependents[owner][dep] = true
	}
}

func (m *egressMonitor) dependentsOf(owner string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.dependents[owner]))
	for d := range m.dependents[owner] {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// netnsOwner is the container of a namespace owner a dependent joins on this node.
type netnsOwner struct {
	// ID of the owner container, "" when none is usable (the dependent is gated: fail closed).
	ID string
	// StartedAt of the owner's current run: a dependent started before it holds a dead
	// namespace and is recreated.
	StartedAt time.Time
	// Why no owner is usable (for the dependents' status).
	Why string
}

// pickOwner chooses, among the owner Service's containers on this node, the one dependents
// join: running, not unhealthy (Docker's HEALTHCHECK or the agent's probe), its egress check
// (if any) passing, lowest replica index first so every dependent picks the same one.
func (r *Reconciler) pickOwner(owner string, ownerSvc *v1.Service, cs []docker.Container) netnsOwner {
	sort.Slice(cs, func(i, j int) bool {
		a, _ := replicaIndex(cs[i])
		b, _ := replicaIndex(cs[j])
		return a < b
	})
	why := fmt.Sprintf("no replica of %s runs on this node", owner)
	if ownerSvc == nil {
		return netnsOwner{Why: fmt.Sprintf("service %s does not exist", owner)}
	}
	for _, c := range cs {
		if !c.Running {
			continue
		}
		if c.Health == string(v1.HealthUnhealthy) || c.Health == string(v1.HealthStarting) {
			why = fmt.Sprintf("%s (container %s) is %s", owner, shortID(c.ID), c.Health)
			continue
		}
		if h, _ := r.prober.status(c.ID); h == v1.HealthUnhealthy || h == v1.HealthStarting {
			why = fmt.Sprintf("%s (container %s) is %s", owner, shortID(c.ID), h)
			continue
		}
		if ownerSvc.Spec.EgressCheck != nil {
			st := r.egress.state(c.ID)
			if !st.ready {
				why = fmt.Sprintf("egress check of %s (container %s) not passing", owner, shortID(c.ID))
				if st.summary != "" {
					why += ": " + st.summary
				}
				continue
			}
		}
		return netnsOwner{ID: c.ID, StartedAt: c.StartedAt}
	}
	return netnsOwner{Why: why}
}

// healGateway takes the healing step due for each running gateway container of svc and
// returns when to look again.
func (r *Reconciler) healGateway(ctx context.Context, name string, svc *v1.Service, cs []docker.Container, now time.Time) time.Duration {
	var wait time.Duration
	for _, c := range cs {
		if !c.Running {
			continue
		}
		step, left := r.egress.next(c.ID, now)
		if left > 0 && (wait == 0 || left < wait) {
			wait = left
		}
		if step == egress.StepNone {
			continue
		}
		idx, _ := replicaIndex(c)
		st := r.egress.state(c.ID)
		log := r.log.With("service", name, "index", idx, "container", shortID(c.ID), "result", st.summary)
		r.egress.took(c.ID, step, now)
		switch step {
		case egress.StepReconnect:
			spec, _ := specOf(svc, c)
			ex, ok := r.cfg.Docker.(Execer)
			if spec == nil || spec.EgressCheck == nil || !ok {
				log.Warn("egress heal: reconnect hook unavailable, skipped")
				break
			}
			code, out, err := ex.ExecRun(ctx, c.ID, spec.EgressCheck.Reconnect, 30*time.Second)
			log.Warn("egress heal step 1: reconnect hook", "command", spec.EgressCheck.Reconnect, "exitCode", code, "output", trimOutput(out), "err", err)
		case egress.StepRestart:
			log.Warn("egress heal step 2: restarting the gateway container (its dependents are recreated once it passes again)")
			if err := r.cfg.Docker.Stop(ctx, c.ID, r.stopTimeout(svc, c)); err != nil {
				log.Warn("egress heal: stop failed", "err", err)
			}
			if err := r.cfg.Docker.Start(ctx, c.ID); err != nil {
				log.Warn("egress heal: start failed", "err", err)
			}
		case egress.StepFailed:
			log.Error("egress heal step 4: reconnect and restarts did not help; reporting EgressFailed so the scheduler re-places the gateway on another node")
		}
		// The step has settled when Settle has passed: look again then.
		if _, left := r.egress.next(c.ID, now); left > 0 && (wait == 0 || left < wait) {
			wait = left
		}
	}
	return wait
}

func trimOutput(s string) string {
	if len(s) > 300 {
		return s[len(s)-300:]
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// enqueueService wakes service name (through the loop while Run runs).
func (r *Reconciler) enqueueService(name string) {
	r.mu.Lock()
	enqueue := r.enqueue
	r.mu.Unlock()
	enqueue(name)
}

// netns returns, for a Service sharing another's network namespace, the owner container its
// replicas join on this node (ID "" when none is usable), and records the dependency so the
// owner's changes wake it. Nil for any other Service.
func (r *Reconciler) netns(ctx context.Context, name string, svc *v1.Service) (*netnsOwner, error) {
	var owner string
	if svc != nil {
		owner, _ = svc.Spec.NetworkOwner()
	}
	r.egress.setDependent(owner, name, owner != "")
	r.mu.Lock()
	delete(r.gated, name)
	r.mu.Unlock()
	if owner == "" {
		return nil, nil
	}
	var ownerSvc *v1.Service
	obj, err := r.cfg.Store.Get(ctx, v1.KindService, owner, store.Stale())
	switch {
	case err == nil:
		ownerSvc = obj.(*v1.Service)
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("get namespace owner %q of %q: %w", owner, name, err)
	}
	cs, err := r.cfg.Docker.List(ctx, map[string]string{docker.LabelService: owner, docker.LabelNode: r.cfg.Node})
	if err != nil {
		return nil, fmt.Errorf("list containers of namespace owner %q: %w", owner, err)
	}
	o := r.pickOwner(owner, ownerSvc, cs)
	if o.ID == "" {
		r.mu.Lock()
		r.gated[name] = o.Why
		r.mu.Unlock()
	}
	return &o, nil
}

// egressChecks keeps the egress probes of service name's running containers going (when its
// spec has an egressCheck), takes the healing steps due, and returns when to look again.
func (r *Reconciler) egressChecks(ctx context.Context, name string, svc *v1.Service, cs []docker.Container, now time.Time) time.Duration {
	keep := map[string]bool{}
	for _, c := range cs {
		if !c.Running {
			continue
		}
		spec, ok := specOf(svc, c)
		if !ok || spec.EgressCheck == nil {
			continue
		}
		idx, _ := replicaIndex(c)
		keep[c.ID] = true
		r.egress.ensure(name, idx, c, spec)
	}
	r.egress.forgetService(name, keep)
	if len(keep) == 0 {
		return 0
	}
	return r.healGateway(ctx, name, svc, cs, now)
}

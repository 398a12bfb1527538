package node

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/redact"
	"github.com/constellation-sh/constellation/pkg/spechash"
)

// publishBlind publishes service name while the engine does not answer. "Cannot see" must
// not read as "healthy" (dockerd died and took its containers with it: every load balancer would
// keep routing to them, and the scheduler would not replace them) nor as "gone" (a dockerd
// restart with live-restore keeps containers running: removing them from Traefik would turn an
// engine restart into an outage). So the containers of the last list stay, with the health the
// agent can still establish without Docker (blindHealth).
func (r *Reconciler) publishBlind(name string, svc *v1.Service, desired map[int32]string) {
	r.mu.Lock()
	cs := append([]docker.Container(nil), r.lastSeen[name]...)
	last := map[string]v1.Health{}
	for _, rep := range r.published[name] {
		if rep.ContainerID != "" {
			last[rep.ContainerID] = rep.Health
		}
	}
	r.mu.Unlock()
	health := map[string]v1.Health{}
	for _, c := range cs {
		health[c.ID] = r.blindHealth(name, svc, c, last[c.ID])
	}
	r.publishWith(name, svc, desired, cs, health, true)
}

// blindHealth is a running container's health while the engine does not answer:
//   - an HTTP or TCP check of the service: the agent's probe, which talks to the container's
//     address and needs no Docker, goes on and decides;
//   - an exec check (Docker's HEALTHCHECK): nobody can run it, so unknown;
//   - no check: a TCP connect to the first declared TCP port of the container, every 2s
//     (prober.ensureFallback): while it connects the replica stays ready, at the first failure
//     it is unknown; without a TCP port (or when it was not ready when last seen) unknown.
//
// Unknown is not ready (observed.Replica.Ready), so such replicas leave every Traefik.
func (r *Reconciler) blindHealth(name string, svc *v1.Service, c docker.Container, last v1.Health) v1.Health {
	if !c.Running {
		return v1.HealthNone
	}
	var spec *v1.ServiceSpec
	if svc != nil {
		spec, _ = spechash.Lookup(svc, c.Labels[docker.LabelSpecHash])
	}
	var hc *v1.HealthCheck
	if spec != nil {
		d := (&v1.Service{Spec: *spec}).DeepCopyObject().(*v1.Service)
		d.Default()
		spec, hc = &d.Spec, d.Spec.HealthCheck
	}
	if h, fallback := r.prober.statusKind(c.ID); h != "" && !fallback {
		return h // an HTTP or TCP check of the service (or of a spec no longer known)
	}
	switch {
	case c.Health != "" || (hc != nil && hc.Exec != nil):
		return v1.HealthUnknown
	case hc != nil && (hc.HTTP != nil || hc.TCP != nil):
		return v1.HealthUnknown // checked, but the probe is not running: no verdict
	case last != v1.HealthNone && last != v1.HealthHealthy:
		return v1.HealthUnknown // it was not ready when last seen
	}
	port, ok := firstTCPPort(spec, c)
	if !ok {
		return v1.HealthUnknown
	}
	r.prober.ensureFallback(name, c, port)
	switch h, _ := r.prober.statusKind(c.ID); h {
	case v1.HealthHealthy, v1.HealthStarting:
		// Starting: ready when last seen, and the first connect runs within 50 ms.
		return v1.HealthNone
	}
	return v1.HealthUnknown
}

// firstTCPPort is the first TCP container port of spec, else (spec unknown) the lowest TCP
// port c publishes.
func firstTCPPort(spec *v1.ServiceSpec, c docker.Container) (int32, bool) {
	if spec != nil {
		for _, p := range spec.Ports {
			if p.Protocol == "" || p.Protocol == v1.ProtocolTCP {
				return p.ContainerPort, true
			}
		}
		return 0, false
	}
	best := int32(0)
	for k := range c.Ports {
		n, proto, _ := strings.Cut(k, "/")
		if proto != string(v1.ProtocolTCP) {
			continue
		}
		if v, err := strconv.Atoi(n); err == nil && (best == 0 || int32(v) < best) {
			best = int32(v)
		}
	}
	return best, best != 0
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

// hostNetworked reports whether c runs in the node's network namespace (spec.hostNetwork):
// Docker lists it on the "host" network, without an address of its own.
func hostNetworked(c docker.Container) bool {
	_, ok := c.Networks["host"]
	return ok
}

// publish records the service's replicas on this node and hands all of them to Publish. It
// reports whether a replica waits for its image.
func (r *Reconciler) publish(name string, svc *v1.Service, desired map[int32]string, cs []docker.Container, health map[string]v1.Health) bool {
	return r.publishWith(name, svc, desired, cs, health, false)
}

// publishWith is publish; blind says cs is the last list seen, the engine not answering now.
// Nothing calls out while holding r.mu: the probe and egress verdicts are read before, observe
// is pure, and Publish runs after r.mu is released (under pubMu, so that passes publish in the
// order they read the replicas: the last Publish always carries the latest view).
func (r *Reconciler) publishWith(name string, svc *v1.Service, desired map[int32]string, cs []docker.Container, health map[string]v1.Health, blind bool) (pulling bool) {
	in := observeInput{
		Service: name, Node: r.cfg.Node, Advertise: r.cfg.Advertise, Now: r.cfg.Clock.Now(),
		Desired: desired, Containers: cs, Health: health, Blind: blind,
		ProbeMessage: map[string]string{}, Egress: map[string]gatewayState{},
	}
	if svc != nil {
		in.Ports = svc.Spec.Ports
	}
	for _, c := range cs {
		if _, msg := r.prober.status(c.ID); msg != "" {
			in.ProbeMessage[c.ID] = msg
		}
		if eg := r.egress.state(c.ID); eg.checked {
			in.Egress[c.ID] = eg
		}
	}
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.mu.Lock()
	states := r.states[name]
	in.States, in.Gated, in.Scrub = states, r.gated[name], r.scrubbers[name]
	in.Draining = map[string]bool{}
	for _, c := range cs {
		if _, ok := r.draining[c.ID]; ok {
			in.Draining[c.ID] = true
		}
	}
	out, pulling := observe(in)
	// Forget states of replicas no longer here.
	for idx := range states {
		if _, ok := desired[idx]; !ok {
			delete(states, idx)
		}
	}
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
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].Service != all[j].Service {
			return all[i].Service < all[j].Service
		}
		return all[i].Index < all[j].Index
	})
	r.cfg.Publish(all)
	return pulling
}

// observeInput is what observe turns into the observed replicas of one service on this node.
type observeInput struct {
	Service, Node, Advertise string
	Now                      time.Time
	Ports                    []v1.ServicePort     // of the Service (nil: gone)
	Desired                  map[int32]string     // spec hash by replica index assigned here
	Containers               []docker.Container   // of the service on this node
	Health                   map[string]v1.Health // by container ID (health)
	States                   map[int32]*replicaState
	Draining                 map[string]bool         // container IDs being drained
	ProbeMessage             map[string]string       // the agent's probe output by container ID
	Egress                   map[string]gatewayState // egress checks by container ID (checked ones only)
	Gated                    string                  // why no gateway container is usable ("" none)
	Scrub                    *redact.Scrubber        // the Service's Secret values
	Blind                    bool                    // Containers is the last list seen: the engine does not answer
}

// observe is the pure core of publish: desired replicas, containers and their health (with the
// replica states, drains, probe and egress verdicts) become the observed replicas, one per
// index, sorted by index. pulling reports whether a replica waits for its image.
func observe(in observeInput) (out []observed.Replica, pulling bool) {
	name, desired, health, states, now := in.Service, in.Desired, in.Health, in.States, in.Now
	seen := map[int32]bool{}
	// Observed state holds one replica per index: prefer the container that should be there,
	// then a running one.
	isDesired := func(c docker.Container) bool {
		idx, ok := replicaIndex(c)
		h, want := desired[idx]
		return ok && want && c.Labels[docker.LabelSpecHash] == h
	}
	cs := append([]docker.Container(nil), in.Containers...)
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
		draining := in.Draining[c.ID]
		if !isDesired && !draining && c.Running {
			draining = true // about to be removed
		}
		if !isDesired && !c.Running {
			continue
		}
		seen[idx] = true
		rep := observed.Replica{Service: name, Index: idx, Node: in.Node, ContainerID: c.ID,
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
			for _, p := range in.Ports {
				if rep.Ports == nil {
					rep.Ports = map[string]string{}
				}
				rep.Ports[observed.PortKey(p.ContainerPort, p.Protocol)] = net.JoinHostPort(in.Advertise, strconv.Itoa(int(p.ContainerPort)))
			}
		} else if c.Running {
			for _, p := range portsOf(in.Ports, c) {
				if hp, ok := c.Ports[p]; ok {
					if rep.Ports == nil {
						rep.Ports = map[string]string{}
					}
					rep.Ports[p] = in.Advertise + ":" + hp.Port
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
		if in.Blind && rep.Reason == "" && c.Running && !rep.Ready() {
			rep.Reason, rep.Message = v1.ReasonEngineUnavailable, "the Docker engine does not answer: shown as last seen"
			if rep.Health == v1.HealthUnknown {
				rep.Message += ", health unknown"
			}
		}
		if rep.Reason == "" && c.Running && rep.Health == v1.HealthUnhealthy {
			rep.Reason = v1.ReasonUnhealthy
			if msg := in.ProbeMessage[c.ID]; msg != "" {
				rep.Message = msg
			} else if c.HealthLog != "" {
				rep.Message = c.HealthLog
			}
		}
		if eg := in.Egress[c.ID]; eg.checked && c.Running && rep.State == v1.ReplicaRunning {
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
		rep.Message = in.Scrub.Scrub(rep.Message)
		out = append(out, rep)
	}
	// Desired replicas without a container: pending, or failing to be created.
	for idx, hash := range desired {
		if seen[idx] {
			continue
		}
		rep := observed.Replica{Service: name, Index: idx, Node: in.Node, SpecHash: hash, State: v1.ReplicaPending, Health: v1.HealthNone, UpdatedAt: now}
		if why := in.Gated; why != "" {
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
		rep.Message = in.Scrub.Scrub(rep.Message)
		out = append(out, rep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, pulling
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

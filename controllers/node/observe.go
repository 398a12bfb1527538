package node

import (
	"strconv"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
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

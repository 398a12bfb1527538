package plan

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/mesh/httpproxy"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// ConditionEgressHealthy is the egress Service condition an upstream's via follows
// (docs/egress.md).
const ConditionEgressHealthy = v1.ServiceEgressHealthy

// PolicyFrom turns a Service's failover block (defaulted here if the store's copy is not) into
// the proxy's policy.
func PolicyFrom(f *v1.Failover) httpproxy.Policy {
	var d v1.Failover
	if f != nil {
		d = *f
		if d.Breaker != nil {
			b := *d.Breaker
			d.Breaker = &b
		}
	}
	d.Default()
	b := d.Breaker
	return httpproxy.Policy{
		On: slices.Clone(d.On), Order: httpproxy.Order(d.Order),
		PerTryTimeout: d.PerTryTimeout.Duration, FirstByteTimeout: d.FirstByteTimeout.Duration,
		MaxAttempts: int(*d.MaxAttempts), RetryBudget: int(*d.RetryBudget), MaxReplayBody: *d.MaxReplayBody,
		ReplayUnsafe: d.ReplayUnsafe,
		Breaker: httpproxy.BreakerPolicy{
			ConsecutiveFailures: int(*b.ConsecutiveFailures), FailureRatio: *b.FailureRatio, Window: b.Window.Duration,
			MinRequests: int(*b.MinRequests), OpenFor: b.OpenFor.Duration, HalfOpenRequests: int(*b.HalfOpenRequests),
		},
	}
}

// ReplicaUpstreamName is X-Constellation-Upstream for a replica: "<node>/<svc>-<i>".
func ReplicaUpstreamName(node, service string, index int32) string {
	return node + "/" + service + "-" + strconv.Itoa(int(index))
}

// httpEntry is the HTTP listener of a Service's port p on its virtual IP: the replicas that
// publish the port (local ones first), or the Service's upstreams in their order.
func httpEntry(in Input, byName map[string]*v1.Service, svc *v1.Service, vip netip.Addr, p v1.ServicePort,
	rs []observed.Replica, alive func(string) bool) httpproxy.Entry {
	e := httpproxy.Entry{Key: httpproxy.Key{VIP: vip, Port: uint16(p.ContainerPort)}, Service: svc.Metadata.Name,
		Policy: PolicyFrom(svc.Spec.Failover)}
	if svc.Spec.IsUpstreamService() {
		for i, u := range svc.Spec.Upstreams {
			pu, err := url.Parse(u.URL)
			if err != nil || pu.Host == "" {
				continue // validation refuses these; never guess
			}
			w := 1
			if u.Weight != nil {
				w = int(*u.Weight)
			}
			hu := httpproxy.Upstream{Name: u.URL, URL: pu, RewriteHost: true, Weight: w, Priority: i, Healthy: true}
			if u.Via != "" {
				hu.Via, hu.Healthy = resolveVia(in, byName, u.Via)
			}
			e.Upstreams = append(e.Upstreams, hu)
		}
		return e
	}
	key := observed.PortKey(p.ContainerPort, p.Protocol)
	for _, r := range rs {
		hostPort := r.Ports[key]
		if hostPort == "" {
			continue
		}
		prio := 1
		if r.Node == in.Node {
			prio = 0
		}
		e.Upstreams = append(e.Upstreams, httpproxy.Upstream{
			Name: ReplicaUpstreamName(r.Node, r.Service, r.Index), URL: &url.URL{Scheme: "http", Host: hostPort},
			Weight: 1, Priority: prio, Healthy: r.Ready() && alive(r.Node),
		})
	}
	slices.SortFunc(e.Upstreams, func(a, b httpproxy.Upstream) int {
		if a.Name < b.Name {
			return -1
		} else if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return e
}

// resolveVia finds the egress Service of an upstream's via: its mesh address and port, and
// whether its upstreams are usable. Fail closed: a via Service that is missing, has no
// virtual IP or whose EgressHealthy is False makes the upstream unavailable; the address is
// still returned when known, so the upstream is never dialled directly.
func resolveVia(in Input, byName map[string]*v1.Service, via string) (*httpproxy.Via, bool) {
	scheme, name, port, ok := v1.ParseVia(via)
	if !ok {
		return &httpproxy.Via{Scheme: "invalid", Address: via}, false
	}
	egress := byName[name]
	if egress == nil || egress.Metadata.DeletionTimestamp != nil {
		return &httpproxy.Via{Scheme: scheme, Address: name + ":" + strconv.Itoa(port)}, false
	}
	addrs := egress.Status.VirtualIP
	a, err := netip.ParseAddr(addrs)
	if err != nil {
		return &httpproxy.Via{Scheme: scheme, Address: name + ":" + strconv.Itoa(port)}, false
	}
	v := &httpproxy.Via{Scheme: scheme, Address: netip.AddrPortFrom(a, uint16(port)).String()}
	for _, c := range egress.Status.Conditions {
		if c.Type == ConditionEgressHealthy && c.Status == v1.ConditionFalse {
			return v, false
		}
	}
	return v, true
}

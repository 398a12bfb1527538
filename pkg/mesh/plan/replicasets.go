package plan

import (
	"net/netip"
	"strconv"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// replicaSetEntries adds, for every ReplicaSet holding a virtual IP (status.virtualIP, the
// address of <rs>-primary), one listener per tcp port of its member Services, whose only
// endpoint is the replica status.primary names, and only while the PrimaryAgreed condition is
// True. Otherwise the listeners exist with no endpoint: a client is refused rather than sent to
// a member that may not be master.
func replicaSetEntries(in Input, byService map[string][]observed.Replica, alive func(string) bool, addAddr func(netip.Addr)) []proxy.Entry {
	svcs := make(map[string]*v1.Service, len(in.Services))
	for _, s := range in.Services {
		svcs[s.Metadata.Name] = s
	}
	var out []proxy.Entry
	for _, rs := range in.ReplicaSets {
		if rs.Metadata.DeletionTimestamp != nil {
			continue
		}
		vip, err := netip.ParseAddr(rs.Status.VirtualIP)
		if err != nil || !vip.Is4() || !in.Prefix.Contains(vip) {
			continue
		}
		primarySvc, idx, ok := primaryOf(rs)
		if c := v1.FindCondition(rs.Status.Conditions, v1.ReplicaSetPrimaryAgreed); c == nil || c.Status != v1.ConditionTrue {
			ok = false
		}
		psvc := svcs[primarySvc]
		if psvc == nil || idx >= psvc.DesiredReplicas() {
			ok = false
		}
		ports := map[int32]bool{}
		for _, m := range rs.Spec.Members {
			svc := svcs[m]
			if svc == nil {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Protocol == v1.ProtocolUDP || ports[p.ContainerPort] {
					continue
				}
				ports[p.ContainerPort] = true
				e := proxy.Entry{Key: proxy.Key{Protocol: proxy.TCP, VIP: vip, Port: uint16(p.ContainerPort)}, Service: rs.Metadata.Name + "-primary"}
				if ok {
					key := observed.PortKey(p.ContainerPort, p.Protocol)
					for _, r := range byService[primarySvc] {
						if r.Index != idx || r.Ports[key] == "" {
							continue
						}
						e.Endpoints = append(e.Endpoints, proxy.Endpoint{Node: r.Node, Address: r.Ports[key],
							Healthy: r.Ready() && alive(r.Node), Local: r.Node == in.Node})
					}
					sortEndpoints(e.Endpoints)
				}
				out = append(out, e)
			}
		}
		if len(ports) > 0 {
			addAddr(vip)
		}
	}
	return out
}

// primaryOf splits status.primary "<svc>-<i>" when svc is a member.
func primaryOf(rs *v1.ReplicaSet) (string, int32, bool) {
	p := rs.Status.Primary
	cut := strings.LastIndexByte(p, '-')
	if cut <= 0 {
		return "", 0, false
	}
	i, err := strconv.Atoi(p[cut+1:])
	if err != nil || i < 0 {
		return "", 0, false
	}
	for _, m := range rs.Spec.Members {
		if m == p[:cut] {
			return m, int32(i), true
		}
	}
	return "", 0, false
}

package agent

import (
	"net/netip"
	"strconv"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	meshdns "github.com/constellation-sh/constellation/pkg/mesh/dns"
	"github.com/constellation-sh/constellation/pkg/mesh/ipam"
)

// primaryTargets is where each ReplicaSet's <rs>-primary name points (DESIGN.md "Mesh"): the
// ReplicaSet's own virtual IP (status.virtualIP) once the mesh controller allocated it; the
// listener there forwards only to the agreed primary (pkg/mesh/plan). Before that, the virtual
// IP of the member replica status.primary names, only while the PrimaryAgreed condition is True
// (the engine's view and the member's own role agree); otherwise the name exists with no
// address, so no client is sent to a member that may not be master.
func primaryTargets(sets []*v1.ReplicaSet, svcs []*v1.Service) []meshdns.ReplicaSet {
	byName := make(map[string]*v1.Service, len(svcs))
	for _, s := range svcs {
		byName[s.Metadata.Name] = s
	}
	out := make([]meshdns.ReplicaSet, 0, len(sets))
	for _, rs := range sets {
		if rs.Metadata.DeletionTimestamp != nil {
			continue
		}
		e := meshdns.ReplicaSet{Name: rs.Metadata.Name}
		if a, err := netip.ParseAddr(rs.Status.VirtualIP); err == nil && a.Is4() {
			e.Primary = a
		} else if c := v1.FindCondition(rs.Status.Conditions, v1.ReplicaSetPrimaryAgreed); c != nil && c.Status == v1.ConditionTrue {
			if svc, idx, ok := primaryReplica(rs, byName); ok {
				addrs, _ := ipam.FromStatus(&svc.Status)
				if a, ok := addrs.Replicas[idx]; ok && idx < svc.DesiredReplicas() {
					e.Primary = a
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// primaryReplica splits status.primary "<svc>-<i>" into a member Service and index.
func primaryReplica(rs *v1.ReplicaSet, svcs map[string]*v1.Service) (*v1.Service, int32, bool) {
	p := rs.Status.Primary
	cut := strings.LastIndexByte(p, '-')
	if cut <= 0 {
		return nil, 0, false
	}
	idx, err := strconv.Atoi(p[cut+1:])
	if err != nil || idx < 0 {
		return nil, 0, false
	}
	name := p[:cut]
	for _, m := range rs.Spec.Members {
		if m == name {
			if svc := svcs[name]; svc != nil {
				return svc, int32(idx), true
			}
		}
	}
	return nil, 0, false
}

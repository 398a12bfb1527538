package agent

import (
	"context"
	"net/netip"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// A Service applied through the API gets its virtual IPs from the agent's --mesh.cidr.
func TestServiceGetsVirtualIPsFromMeshCIDR(t *testing.T) {
	_, c := startAgent(t, "n1", func(cfg *config.Config) { cfg.Mesh.CIDR = "10.77.0.0/20" })
	ctx := context.Background()
	svc := spec.Service("web", "registry.local/web:1", spec.Port("http", 8080), spec.Replicas(2))
	svc.Default()
	if _, err := c.Put(ctx, svc, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var st v1.ServiceStatus
	eventually(t, "status.virtualIP and two replica addresses", func() bool {
		o, err := c.Get(ctx, v1.KindService, "web")
		if err != nil {
			return false
		}
		st = o.(*v1.Service).Status
		return st.VirtualIP != "" && len(st.ReplicaVirtualIPs) == 2
	})
	cidr := netip.MustParsePrefix("10.77.0.0/20")
	seen := map[string]bool{}
	for _, a := range []string{st.VirtualIP, st.ReplicaVirtualIPs[0].IP, st.ReplicaVirtualIPs[1].IP} {
		ip, err := netip.ParseAddr(a)
		if err != nil || !cidr.Contains(ip) || seen[a] {
			t.Errorf("address %q: not a distinct address of %s (status %+v)", a, cidr, st)
		}
		seen[a] = true
	}
	if st.ReplicaVirtualIPs[0].Index != 0 || st.ReplicaVirtualIPs[1].Index != 1 {
		t.Errorf("replica indices: %+v", st.ReplicaVirtualIPs)
	}

	// The scheduler's and the status controller's writes keep the addresses (and the mesh
	// controller's keep theirs): the node runs without Docker, so the scheduler says why it
	// placed nothing, and the status controller folds the (absent) replicas.
	eventually(t, "scheduler and status controller wrote too, addresses kept", func() bool {
		o, err := c.Get(ctx, v1.KindService, "web")
		if err != nil {
			return false
		}
		now := o.(*v1.Service).Status
		p := v1.FindCondition(now.Conditions, v1.ServiceProgressing)
		r := v1.FindCondition(now.Conditions, v1.ServiceReady)
		return p != nil && p.Reason == v1.ReasonUnschedulable && r != nil &&
			now.VirtualIP == st.VirtualIP && len(now.ReplicaVirtualIPs) == 2 && now.ReplicaVirtualIPs[1] == st.ReplicaVirtualIPs[1]
	})
}

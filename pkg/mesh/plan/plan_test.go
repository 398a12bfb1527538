package plan

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func svc(name, vip string, replicas int32, replicaIPs ...string) *v1.Service {
	s := &v1.Service{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ServiceSpec{
		Replicas: &replicas,
		Ports:    []v1.ServicePort{{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: v1.ProtocolUDP}},
	}}
	s.Status.VirtualIP = vip
	for i, ip := range replicaIPs {
		s.Status.ReplicaVirtualIPs = append(s.Status.ReplicaVirtualIPs, v1.ReplicaVirtualIP{Index: int32(i), IP: ip})
	}
	return s
}

func replica(service string, index int32, node string, ready bool, ports map[string]string) observed.Replica {
	r := observed.Replica{Service: service, Index: index, Node: node, State: v1.ReplicaRunning, Health: v1.HealthHealthy, Ports: ports}
	if !ready {
		r.Health = v1.HealthUnhealthy
	}
	return r
}

// show prints a table one entry a line: "vip:port/proto service [node address flags...]".
func show(t proxy.Table) string {
	var b strings.Builder
	for _, e := range t {
		fmt.Fprintf(&b, "%s:%d/%s %s", e.VIP, e.Port, e.Protocol, e.Service)
		for _, ep := range e.Endpoints {
			flags := ""
			if ep.Healthy {
				flags += "+"
			} else {
				flags += "-"
			}
			if ep.Local {
				flags += "L"
			}
			fmt.Fprintf(&b, " %s=%s%s", ep.Node, ep.Address, flags)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestCompute(t *testing.T) {
	prefix := netip.MustParsePrefix("10.213.0.0/16")
	web := svc("web", "10.213.0.10", 2, "10.213.0.11", "10.213.0.12", "10.213.0.13")
	deleting := svc("gone", "10.213.0.20", 1, "10.213.0.21")
	now := time.Unix(1, 0)
	deleting.Metadata.DeletionTimestamp = &now
	in := Input{
		Node:     "n1",
		Services: []*v1.Service{web, svc("novip", "", 1), svc("old", "10.99.0.5", 1), deleting},
		Replicas: []observed.Replica{
			replica("web", 0, "n1", true, map[string]string{"8080/tcp": "10.0.0.1:31000", "53/udp": "10.0.0.1:31001"}),
			replica("web", 1, "n2", true, map[string]string{"8080/tcp": "10.0.0.2:31000", "53/udp": "10.0.0.2:31001"}),
			replica("web", 1, "n3", false, map[string]string{"8080/tcp": "10.0.0.3:31000"}), // a second copy, unhealthy, no UDP published
			replica("novip", 0, "n1", true, map[string]string{"8080/tcp": "10.0.0.1:32000"}),
		},
		Alive:  func(n string) bool { return n != "n2" },
		Prefix: prefix,
	}
	got := Compute(in)
	want := `10.213.0.10:53/udp web n1=10.0.0.1:31001+L n2=10.0.0.2:31001-
10.213.0.10:8080/tcp web n1=10.0.0.1:31000+L n2=10.0.0.2:31000- n3=10.0.0.3:31000-
10.213.0.11:53/udp web-0 n1=10.0.0.1:31001+L
10.213.0.11:8080/tcp web-0 n1=10.0.0.1:31000+L
10.213.0.12:53/udp web-1 n2=10.0.0.2:31001-
10.213.0.12:8080/tcp web-1 n2=10.0.0.2:31000- n3=10.0.0.3:31000-
`
	if s := show(got.Table); s != want {
		t.Fatalf("table:\n%s\nwant:\n%s", s, want)
	}
	// No listener for a Service without a virtual IP, outside the prefix, being deleted, or
	// for a scaled-away index (10.213.0.13).
	if fmt.Sprint(got.Addresses) != "[10.213.0.10 10.213.0.11 10.213.0.12]" {
		t.Fatalf("addresses %v", got.Addresses)
	}
	// Same input, same output (the proxy compares tables).
	if show(Compute(in).Table) != want {
		t.Fatal("not deterministic")
	}
	// With nobody dead and no replica, every listener is still there, without endpoints.
	empty := Compute(Input{Node: "n1", Services: []*v1.Service{web}, Prefix: prefix})
	if len(empty.Table) != 6 {
		t.Fatalf("%d listeners without replicas, want 6 (clients get a refused connection, not a missing address)", len(empty.Table))
	}
	for _, e := range empty.Table {
		if len(e.Endpoints) != 0 {
			t.Fatalf("endpoints from nowhere: %+v", e)
		}
	}
}

package agent

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/observed"
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

// Two whole agents in one process, as two nodes: n1 runs the mesh plane (virtual IPs on this
// process's lo, the proxy, the name server), n2 runs none (one network namespace has one lo) and
// stands for a remote node whose only replica of "web" publishes a port that a local TCP server
// plays. From n1's side of the mesh: the name resolves to the virtual IP, the Service's and
// replica 0's addresses reach n2's replica, and when n2 goes the endpoint leaves n1's mesh (new
// connections are refused at once instead of hanging). Needs root (addresses on lo, port 53).
func TestMeshAcrossTwoAgentsInOneProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CONSTELLATION_TEST_STRICT") != "" {
			t.Fatal("needs root: the mesh plane adds addresses to lo and listens on port 53 (make test runs as root)")
		}
		t.Skip("needs root: the mesh plane adds addresses to lo and listens on port 53 (make test runs as root)")
	}
	const cidr = "10.219.0.0/24"
	withRaft := raftAgents(t)
	a1, _ := startAgent(t, "n1", func(cfg *config.Config) {
		withRaft("")(cfg)
		cfg.Mesh.CIDR, cfg.Mesh.Disabled = cidr, false
	})
	stop2, a2 := startAgentStoppable(t, "n2", func(cfg *config.Config) {
		withRaft(a1.APIAddress())(cfg)
		cfg.Mesh.CIDR = cidr
	})
	c, err := client.New(client.Config{Server: a1.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// n2's replica: a TCP server answering "web-0 on n2" to every connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("web-0 on n2\n"))
			conn.Close()
		}
	}()

	svc := spec.Service("web", "registry.local/web:1", spec.Port("http", 8080))
	svc.Default()
	if _, err := c.Put(ctx, svc, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var st v1.ServiceStatus
	eventually(t, "virtual IPs allocated", func() bool {
		o, err := c.Get(ctx, v1.KindService, "web")
		if err != nil {
			return false
		}
		st = o.(*v1.Service).Status
		return st.VirtualIP != "" && len(st.ReplicaVirtualIPs) == 1
	})
	// Neither node has Docker, so nothing is placed; n2 publishes the replica as its node
	// reconciler would once the container runs.
	a2.gossip.SetLocalReplicas([]observed.Replica{{
		Service: "web", Index: 0, Node: "n2", State: v1.ReplicaRunning, Health: v1.HealthNone,
		Ports: map[string]string{"8080/tcp": ln.Addr().String()}, UpdatedAt: time.Now(),
	}})

	read := func(addr string) (string, error) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(conn)
		return string(b), err
	}
	for _, vip := range []string{st.VirtualIP, st.ReplicaVirtualIPs[0].IP} {
		addr := net.JoinHostPort(vip, "8080")
		eventually(t, addr+" reaches n2's replica through n1's mesh", func() bool {
			got, err := read(addr)
			return err == nil && got == "web-0 on n2\n"
		})
	}

	// The name server on n1 answers the mesh names with those addresses.
	dnsAddr := net.JoinHostPort(netip.MustParsePrefix(cidr).Addr().Next().String(), "53")
	for name, want := range map[string]string{
		"web.constellation.internal.":       st.VirtualIP,
		"web-0.web.constellation.internal.": st.ReplicaVirtualIPs[0].IP,
	} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		var r *dns.Msg
		eventually(t, name+" answered by "+dnsAddr, func() bool {
			r, _, err = new(dns.Client).Exchange(m, dnsAddr)
			return err == nil && len(r.Answer) == 1
		})
		if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != want {
			t.Errorf("%s: answer %v, want A %s", name, r.Answer, want)
		}
	}

	// n2 stops: its replica leaves n1's mesh, and a new connection is refused at once (reset,
	// no data) rather than sent to a node that is gone.
	t0 := time.Now()
	stop2()
	addr := net.JoinHostPort(st.VirtualIP, "8080")
	eventually(t, "n2's endpoint gone from n1's mesh", func() bool {
		got, _ := read(addr)
		return got == ""
	})
	t.Logf("n2 stopped: new connections through n1's mesh no longer reach it after %s", time.Since(t0).Round(time.Millisecond))
	v, err := c.Mesh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range v.Listeners {
		for _, ep := range l.Endpoints {
			if ep.Node == "n2" && ep.Healthy {
				t.Errorf("listener %s:%d still has n2's endpoint healthy: %+v", l.VIP, l.Port, ep)
			}
		}
	}
}

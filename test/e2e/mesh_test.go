package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// Scenario 10: the mesh across nodes. A client Service on n1 reaches, by name, a server Service
// whose only replica runs on another node (the nodes labelled mesh=server: n2 and n3); the
// server's node is killed, the replica moves to the other one, and new connections from the
// client succeed again (the time it takes is printed).
func TestScenario10MeshAcrossNodes(t *testing.T) {
	c := startCluster(t, harness.Options{NodeAgentArgs: map[string][]string{
		"n2": {"--node.labels.mesh=server"}, "n3": {"--node.labels.mesh=server"},
	}})
	ctx := ctxFor(t, 10*time.Minute)
	srv := spec.Service("mesh-srv", "constellation-test/echo:1", spec.Replicas(1), spec.Port("http", 8080),
		spec.UDPPort("echo-udp", 8053), spec.HTTPHealth("/healthz", "http", time.Second), spec.NodeSelector("mesh", "server"))
	cli := spec.Service("mesh-cli", "constellation-test/echo:1", spec.Replicas(1), spec.Port("http", 8080),
		spec.HTTPHealth("/healthz", "http", time.Second), spec.NodeSelector("zone", "n1"))
	for _, s := range []*v1.Service{srv, cli} {
		if err := putService(ctx, c.Nodes[0], s); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"mesh-srv", "mesh-cli"} {
		if _, err := harness.WaitServiceReady(ctx, c.Nodes, name, 2*time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	n1 := c.Nodes[0]
	serverNode := func() (string, string, error) {
		o, err := n1.Client().Get(ctx, v1.KindService, "mesh-srv")
		if err != nil {
			return "", "", err
		}
		s := o.(*v1.Service)
		if s.Status.VirtualIP == "" {
			return "", "", fmt.Errorf("mesh-srv has no virtual IP yet")
		}
		for _, r := range s.Status.ReplicaStatuses {
			if r.State == v1.ReplicaRunning && r.Health == v1.HealthHealthy {
				return r.Node, s.Status.VirtualIP, nil
			}
		}
		return "", "", fmt.Errorf("mesh-srv has no healthy replica")
	}
	var node, vip string
	if err := waitUntil(ctx, time.Minute, func() (err error) { node, vip, err = serverNode(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Logf("mesh-srv runs on %s, virtual IP %s", node, vip)
	if node == "n1" {
		t.Fatalf("mesh-srv on n1: its nodeSelector is not honoured")
	}
	// probe runs the echo binary's HTTP probe inside the client's container on n1: exit 0 on 200.
	probe := func(url string) error {
		id, err := n1.Exec(ctx, "sh", "-c", "docker ps -q --filter label=constellation.service=mesh-cli | head -1")
		if err != nil || strings.TrimSpace(id) == "" {
			return fmt.Errorf("client container on n1: %q %v", id, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := n1.Exec(pctx, "docker", "exec", strings.TrimSpace(id), "/app", "-probe", url)
		if err != nil {
			return fmt.Errorf("probe %s from n1's client: %v %s", url, err, out)
		}
		return nil
	}
	t0 := time.Now()
	for _, u := range []string{"http://mesh-srv:8080/", "http://mesh-srv.constellation.internal:8080/", "http://mesh-srv-0.mesh-srv:8080/", "http://" + vip + ":8080/"} {
		if err := waitUntil(ctx, time.Minute, func() error { return probe(u) }); err != nil {
			t.Fatalf("%s: %v\n%s", u, err, n1.LogTail("agent", 20))
		}
	}
	t.Logf("the client on n1 reaches mesh-srv on %s by name (%s after both were ready)", node, time.Since(t0).Round(time.Millisecond))
	// On the server's own node too: its replica reaches itself through the mesh (the local
	// endpoint).
	var victim0 *harness.Node
	for _, n := range c.Nodes {
		if n.Name == node {
			victim0 = n
		}
	}
	if err := waitUntil(ctx, time.Minute, func() error {
		id, err := victim0.Exec(ctx, "sh", "-c", "docker ps -q --filter label=constellation.service=mesh-srv | head -1")
		if err != nil || strings.TrimSpace(id) == "" {
			return fmt.Errorf("server container on %s: %q %v", node, id, err)
		}
		out, err := victim0.Exec(ctx, "docker", "exec", strings.TrimSpace(id), "/app", "-probe", "http://mesh-srv:8080/")
		if err != nil {
			return fmt.Errorf("probe on %s: %v %s", node, err, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("same node: %v", err)
	}
	// UDP too: a datagram to mesh-srv:8053 comes back from the replica on the other node.
	udp := func() (string, error) {
		id, err := n1.Exec(ctx, "sh", "-c", "docker ps -q --filter label=constellation.service=mesh-cli | head -1")
		if err != nil {
			return "", err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return n1.Exec(pctx, "docker", "exec", strings.TrimSpace(id), "/app", "-udp-probe", "mesh-srv:8053")
	}
	var echoed string
	if err := waitUntil(ctx, time.Minute, func() (err error) { echoed, err = udp(); return err }); err != nil {
		t.Fatalf("UDP through the mesh: %v %s", err, echoed)
	}
	if !strings.Contains(echoed, "echo 1") || !strings.Contains(echoed, "ping") {
		t.Fatalf("UDP echo %q, want the server's echo of ping", echoed)
	}
	t.Logf("UDP through the mesh: %q", strings.TrimSpace(echoed))
	// Every node's mesh, as ctl shows it: each node listens on mesh-srv's address with the
	// replica as endpoint, local on the server's node only.
	out, err := c.Ctl(ctx, n1, "routes", "--mesh")
	if err != nil {
		t.Fatalf("ctl routes --mesh: %v\n%s", err, out)
	}
	t.Logf("ctl routes --mesh:\n%s", out)
	for _, n := range c.Nodes {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == n.Name && f[1] == vip+":8080/tcp" && f[2] == "mesh-srv" && f[3] == node {
				found = true
				if local := strings.Contains(line, "(local"); local != (n.Name == node) {
					t.Errorf("%s: local marker %v, want %v: %s", n.Name, local, n.Name == node, line)
				}
			}
		}
		if !found {
			t.Errorf("ctl routes --mesh shows no %s:8080/tcp listener of mesh-srv on %s with endpoint on %s", vip, n.Name, node)
		}
	}

	var victim *harness.Node
	for _, n := range c.Nodes {
		if n.Name == node {
			victim = n
		}
	}
	if err := victim.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Logf("killed %s", victim.Name)
	if err := waitUntil(ctx, 2*time.Minute, func() error { return probe("http://mesh-srv:8080/") }); err != nil {
		t.Fatalf("after %s was killed: %v\n%s", victim.Name, err, n1.LogTail("agent", 20))
	}
	var newNode string
	_ = waitUntil(ctx, 30*time.Second, func() (err error) {
		if newNode, _, err = serverNode(); err == nil && newNode == victim.Name {
			err = fmt.Errorf("status still shows %s", victim.Name)
		}
		return err
	})
	t.Logf("new connections from n1 reach mesh-srv again %s after %s was killed (replica now on %s)",
		time.Since(killed).Round(time.Millisecond), victim.Name, newNode)
}

// Scenario 11: the mesh is data plane first. With the raft quorum lost (n3 killed, raft traffic
// between n1 and n2 dropped: gossip and the published ports still flow), a client on n1 still
// reaches, by name, a server on n2: the mesh runs from the local replica of the store and the
// gossip view.
func TestScenario11MeshWithoutQuorum(t *testing.T) {
	c := startCluster(t, harness.Options{})
	ctx := ctxFor(t, 10*time.Minute)
	srv := spec.Service("mesh-q-srv", "constellation-test/echo:1", spec.Replicas(1), spec.Port("http", 8080),
		spec.HTTPHealth("/healthz", "http", time.Second), spec.NodeSelector("zone", "n2"))
	cli := spec.Service("mesh-q-cli", "constellation-test/echo:1", spec.Replicas(1), spec.Port("http", 8080),
		spec.HTTPHealth("/healthz", "http", time.Second), spec.NodeSelector("zone", "n1"))
	for _, s := range []*v1.Service{srv, cli} {
		if err := putService(ctx, c.Nodes[0], s); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"mesh-q-srv", "mesh-q-cli"} {
		if _, err := harness.WaitServiceReady(ctx, c.Nodes, name, 2*time.Minute, nil); err != nil {
			t.Fatal(err)
		}
	}
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	probe := func() error {
		id, err := n1.Exec(ctx, "sh", "-c", "docker ps -q --filter label=constellation.service=mesh-q-cli | head -1")
		if err != nil || strings.TrimSpace(id) == "" {
			return fmt.Errorf("client container on n1: %q %v", id, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := n1.Exec(pctx, "docker", "exec", strings.TrimSpace(id), "/app", "-probe", "http://mesh-q-srv:8080/")
		if err != nil {
			return fmt.Errorf("probe from n1's client: %v %s", err, out)
		}
		return nil
	}
	if err := waitUntil(ctx, time.Minute, probe); err != nil {
		t.Fatalf("before the quorum loss: %v\n%s", err, n1.LogTail("agent", 20))
	}
	if err := n3.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	drop := fmt.Sprintf("iptables -I INPUT -p tcp --dport %d -j DROP; iptables -I OUTPUT -p tcp --dport %d -j DROP", harness.RaftPort, harness.RaftPort)
	for _, n := range []*harness.Node{n1, n2} {
		if _, err := n.Exec(ctx, "sh", "-c", drop); err != nil {
			t.Fatal(err)
		}
	}
	// The quorum is gone: a write through n1 times out.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, werr := n1.Client().Put(wctx, spec.Secret("mesh-q-probe", map[string]string{"k": "v"}), client.PutOptions{})
	cancel()
	if werr == nil {
		t.Fatal("a write succeeded: the quorum is not lost, the test shows nothing")
	}
	t.Logf("quorum lost (a write through n1: %v)", werr)
	for i := range 10 {
		if err := probe(); err != nil {
			t.Fatalf("probe %d without quorum: %v\n%s", i, err, n1.LogTail("agent", 20))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("10 of 10 new connections from n1 reached mesh-q-srv on n2 by name without a raft quorum")
}

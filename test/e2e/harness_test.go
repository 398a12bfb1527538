package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// TestHarness proves the harness and its fault primitives on real node containers, independent
// of the product's cluster features: it runs every agent on the in-memory store (N one-node
// clusters), so it passes as long as the node recipe, the agent binary and Traefik work.
func TestHarness(t *testing.T) {
	c := startCluster(t, harness.Options{MemoryStore: true})
	ctx := ctxFor(t, 10*time.Minute)
	n1, n3 := c.Nodes[0], c.Nodes[2]

	for _, n := range c.Nodes {
		out, err := n.Docker(ctx, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
		if err != nil || !strings.Contains(out, "constellation-test/echo:1") {
			t.Fatalf("%s: workload image not loaded: %v %q", n.Name, err, out)
		}
		if n.LB {
			if _, err := n.TraefikServers(ctx); err != nil {
				t.Fatalf("%s: traefik API: %v", n.Name, err)
			}
		}
	}

	// A container on n3's inner dockerd, published on n3's address, reached from n1.
	if _, err := n3.Docker(ctx, "run", "-d", "--name", "probe", "-p", "18080:8080", "constellation-test/echo:1"); err != nil {
		t.Fatal(err)
	}
	url := "http://" + n3.IP + ":18080/"
	fromN1 := func() error {
		_, err := n1.Exec(ctx, "curl", "-fsS", "-m", "2", url)
		return err
	}
	waitFor(t, 20*time.Second, "probe reachable from n1", fromN1)

	// Dropped traffic between n3 and n1: requests time out; healed: they pass again.
	if err := n3.DropTraffic(ctx, n1); err != nil {
		t.Fatal(err)
	}
	if err := fromN1(); err == nil {
		t.Fatal("n1 still reaches n3 with its traffic dropped")
	}
	if err := n3.HealTraffic(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "probe reachable after healing", fromN1)

	// Network disconnect.
	t0 := time.Now()
	if err := n3.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fromN1(); err == nil {
		t.Fatal("n1 still reaches n3 after disconnect")
	}
	if err := n3.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "probe reachable after reconnect", fromN1)
	t.Logf("partition and heal: %s", time.Since(t0).Round(time.Millisecond))

	// Slow network.
	if err := n3.SlowNetwork(ctx, "1mbit"); err != nil {
		t.Fatal(err)
	}
	dev, _ := n3.NetDev(ctx)
	out, _ := n3.Exec(ctx, "tc", "qdisc", "show", "dev", dev)
	if !strings.Contains(out, "tbf") {
		t.Fatalf("no tbf qdisc: %q", out)
	}
	if err := n3.ClearNetwork(ctx); err != nil {
		t.Fatal(err)
	}

	// dockerd restart.
	pid1, _ := n3.DockerdPID(ctx)
	t0 = time.Now()
	if err := n3.RestartDockerd(ctx); err != nil {
		t.Fatal(err)
	}
	pid2, _ := n3.DockerdPID(ctx)
	if pid1 == "" || pid1 == pid2 {
		t.Fatalf("dockerd pid %q -> %q: not restarted", pid1, pid2)
	}
	t.Logf("dockerd restart: %s", time.Since(t0).Round(time.Millisecond))

	// Kill and start a load balancer node; graceful stop and start of a worker.
	n2 := c.Nodes[1]
	t0 = time.Now()
	if err := n2.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if n2.Running(ctx) {
		t.Fatal("n2 still running after kill")
	}
	if err := n2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kill and start of n2 (dockerd, agent, traefik up): %s", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := n3.Stop(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := n3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop and start of n3: %s", time.Since(t0).Round(time.Millisecond))
	if out, err := n3.Docker(ctx, "image", "ls", "-q", "constellation-test/echo:1"); err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("n3 lost its images over a restart: %v %q", err, out)
	}
}

// waitFor polls f every 200ms until it succeeds or max passes.
func waitFor(t *testing.T, max time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(max)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, max, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

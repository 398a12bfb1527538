package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// Scenario 18 (issue 22): an image that exists on one node only, no registry anywhere. A new
// image (a label on top of echo:1, so a new image ID) is built inside n1's engine alone; a
// Service of it with one replica on each of the three nodes must become Ready: n2 and n3 fetch
// it from n1 through the agents (GET /cluster/images/archive, docker load), and their Pulled
// events name n1 as the source.
func TestScenario18ImageFromPeer(t *testing.T) {
	c := startCluster(t, harness.Options{})
	ctx := ctxFor(t, 10*time.Minute)
	img := "constellation-test/peeronly:" + strings.ToLower(c.RunID[len(c.RunID)-8:])
	src := c.Nodes[0]
	build := fmt.Sprintf(`printf 'FROM constellation-test/echo:1\nLABEL constellation.e2e.peeronly=%s\n' | docker build -q -t %s -`, c.RunID, img)
	if out, err := src.Exec(ctx, "sh", "-c", build); err != nil {
		t.Fatalf("build %s on %s: %v\n%s", img, src.Name, err, out)
	}
	for _, n := range c.Nodes[1:] {
		if _, err := n.Docker(ctx, "image", "inspect", img); err == nil {
			t.Fatalf("%s already has %s: the scenario would prove nothing", n.Name, img)
		}
	}
	const svc, host = "e2e-img", "img.e2e.test"
	s := echoService(svc, img, int32(len(c.Nodes)), host)
	spec.MaxPerNode(1)(s)
	t0 := time.Now()
	if err := putService(ctx, c.Nodes[0], s); err != nil {
		t.Fatal(err)
	}
	final, err := harness.WaitServiceReady(ctx, c.Nodes, svc, 4*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d replicas of %s Ready in %s on %v", len(c.Nodes), img, time.Since(t0).Round(time.Millisecond), replicaNodes(final))
	for _, n := range c.Nodes {
		if _, err := n.Docker(ctx, "image", "inspect", img); err != nil {
			t.Errorf("%s does not hold %s after the rollout: %v", n.Name, img, err)
		}
	}
	out, err := c.Ctl(ctx, c.Nodes[0], "get", "events", "--for", "svc/"+svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("events:\n%s", out)
	fromPeer := strings.Count(out, "from node "+src.Name)
	if fromPeer < len(c.Nodes)-1 {
		t.Errorf("%d Pulled events name %s as the source, want %d (one per other node)", fromPeer, src.Name, len(c.Nodes)-1)
	}
}

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// Scenario 12: volumes are sticky. A replica with a named volume on n3 is not re-placed when
// n3 is killed: it waits (Progressing False WaitingForNode naming n3) and no container of the
// Service appears on another node; when n3 comes back the replica runs there again, on its
// volume.
func TestScenario12StickyVolume(t *testing.T) {
	c := startCluster(t, harness.Options{})
	ctx := ctxFor(t, 10*time.Minute)
	const svc = "e2e-sticky"
	s := spec.Service(svc, "constellation-test/echo:1", spec.Replicas(1), spec.Port("http", 8080),
		spec.HTTPHealth("/healthz", "http", time.Second), spec.NodeSelector("zone", "n3"), spec.Volume("e2e-sticky-data", "/data"))
	if err := putService(ctx, c.Nodes[0], s); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.WaitServiceReady(ctx, c.Nodes, svc, 2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	// The nodeSelector put it on n3; lift it so that only the volume keeps it there.
	s.Spec.Placement.NodeSelector = nil
	if err := putService(ctx, c.Nodes[0], s); err != nil {
		t.Fatal(err)
	}
	n1, n3 := c.Nodes[0], c.Nodes[2]
	containersOn := func(n *harness.Node) int {
		out, err := n.Exec(ctx, "sh", "-c", "docker ps -q --filter label=constellation.service="+svc+" | wc -l")
		if err != nil {
			return -1
		}
		var k int
		fmt.Sscan(strings.TrimSpace(out), &k)
		return k
	}
	if k := containersOn(n3); k != 1 {
		t.Fatalf("%d containers of %s on n3, want 1", k, svc)
	}
	if err := n3.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed n3")
	var msg string
	if err := waitUntil(ctx, time.Minute, func() error {
		o, err := n1.Client().Get(ctx, v1.KindService, svc)
		if err != nil {
			return err
		}
		p := v1.FindCondition(o.(*v1.Service).Status.Conditions, v1.ServiceProgressing)
		if p == nil || p.Reason != v1.ReasonWaitingForNode || !strings.Contains(p.Message, "n3") {
			return fmt.Errorf("progressing %+v", p)
		}
		msg = p.Message
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Progressing WaitingForNode: %s", msg)
	// Well past gossip's detection and the scheduler's reaction, nothing runs elsewhere.
	time.Sleep(10 * time.Second)
	for _, n := range c.Nodes[:2] {
		if k := containersOn(n); k != 0 {
			t.Fatalf("%d containers of %s on %s while its volume's node is down: the data would fork", k, svc, n.Name)
		}
	}
	if err := n3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := harness.WaitServiceReady(ctx, c.Nodes, svc, 2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	o, err := n1.Client().Get(ctx, v1.KindService, svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range o.(*v1.Service).Status.ReplicaStatuses {
		if r.Node != "n3" {
			t.Fatalf("replica %d on %s after n3 returned, want n3", r.Index, r.Node)
		}
	}
	if out, err := n3.Exec(ctx, "docker", "volume", "inspect", "-f", "{{.Name}}", "e2e-sticky-data"); err != nil || !strings.Contains(out, "e2e-sticky-data") {
		t.Fatalf("volume on n3: %q %v", out, err)
	}
	t.Logf("the replica runs on n3 again, on its volume, %s after n3 was started; 0 containers elsewhere meanwhile", time.Since(t0).Round(time.Millisecond))
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
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

// Scenario 19 (issue 22): a node killed mid-transfer. A 100 MB image (random, incompressible)
// is on n1 and n2 only; the agents send at most 10 MB/s (--images.sendRate), so a copy takes
// about 10 s. A Service whose one replica must land on n3 (node selector) makes n3 fetch it;
// as soon as n3 reports `ImagePulling ... from node nX`, nX fails: "kill" kills it (its kernel
// closes the connection), "silent" drops all its traffic with the other nodes (the connection
// hangs: only gossip declaring nX dead, the idle-read deadline or the keepalives end it). n3
// must fetch the image whole from the other holder within 30 s of the fault (not the 2 min
// response-header timeout, nor TCP's retransmissions), and the replica become Ready: the
// status showed nX then the other, the Pulled Event names the other, and nothing was pulled
// from a registry. The archive cannot resume at a byte offset (docker load takes one tar
// stream): the second transfer starts from the beginning.
func TestScenario19ImagePeerKilledMidTransfer(t *testing.T) {
	for _, fault := range []string{"kill", "silent"} {
		t.Run(fault, func(t *testing.T) { peerFailsMidTransfer(t, fault) })
	}
}

func peerFailsMidTransfer(t *testing.T, fault string) {
	const rate = 10_000_000 // bytes/s
	c := startCluster(t, harness.Options{AgentArgs: []string{fmt.Sprintf("--images.sendRate=%d", rate)}})
	ctx := ctxFor(t, 10*time.Minute)
	img := "constellation-test/midkill:" + strings.ToLower(c.RunID[len(c.RunID)-8:])
	holders, dst := c.Nodes[:2], c.Nodes[2]
	build := fmt.Sprintf(`set -e; d=$(mktemp -d); head -c %d /dev/urandom > $d/blob
printf 'FROM constellation-test/echo:1\nCOPY blob /blob\nLABEL constellation.e2e.midkill=%s\n' > $d/Dockerfile
tar -C $d -c . | docker build -q -t %s -; rm -rf $d`, 100<<20, c.RunID, img)
	if out, err := holders[0].Exec(ctx, "sh", "-c", build); err != nil {
		t.Fatalf("build %s on %s: %v\n%s", img, holders[0].Name, err, out)
	}
	// The second holder gets it by hand (setup, not the path under test).
	pipe := fmt.Sprintf("docker exec %s docker save %s | docker exec -i %s docker load -q", holders[0].Container, img, holders[1].Container)
	if out, err := exec.CommandContext(ctx, "sh", "-c", pipe).CombinedOutput(); err != nil {
		t.Fatalf("save | load to %s: %v\n%s", holders[1].Name, err, out)
	}
	if _, err := dst.Docker(ctx, "image", "inspect", img); err == nil {
		t.Fatalf("%s already holds %s: the scenario would prove nothing", dst.Name, img)
	}

	const svc, host = "e2e-midkill", "midkill.e2e.test"
	s := echoService(svc, img, 1, host)
	spec.NodeSelector("zone", dst.Name)(s)
	if err := putService(ctx, dst, s); err != nil {
		t.Fatal(err)
	}
	// Watch n3's replica status until it names its source.
	from := regexp.MustCompile(`pulling image \S+ from node (n\d+)`)
	var first *harness.Node
	t0 := time.Now()
	for first == nil {
		if ctx.Err() != nil || time.Since(t0) > 3*time.Minute {
			t.Fatalf("%s never reported pulling %s from a node", dst.Name, img)
		}
		if got, err := dst.Service(ctx, svc); err == nil {
			for _, r := range got.Status.ReplicaStatuses {
				if m := from.FindStringSubmatch(r.Message); m != nil {
					for _, h := range holders {
						if h.Name == m[1] {
							first = h
						}
					}
					if first == nil {
						t.Fatalf("%s pulls from %s, which does not hold the image: %q", dst.Name, m[1], r.Message)
					}
					t.Logf("after %s: %q", time.Since(t0).Round(time.Millisecond), r.Message)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	second := holders[0]
	if first == holders[0] {
		second = holders[1]
	}
	var err error
	tKill := time.Now() // the fault's start: a docker kill on a busy machine takes seconds
	if fault == "kill" {
		err = first.Kill(ctx)
	} else {
		err = first.DropTraffic(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s mid-transfer (took %s); %s must fetch from %s", fault, first.Name, time.Since(tKill).Round(time.Millisecond), dst.Name, second.Name)

	// The status must move to the other peer, then the replica become Ready.
	var final *v1.Service
	sawSecond := false
	for {
		if ctx.Err() != nil || time.Since(tKill) > 4*time.Minute {
			t.Fatalf("services/%s not Ready 4m after %s failed (%s; last: %v)", svc, first.Name, fault, final)
		}
		if got, err := dst.Service(ctx, svc); err == nil {
			final = got
			for _, r := range got.Status.ReplicaStatuses {
				if m := from.FindStringSubmatch(r.Message); m != nil && m[1] == second.Name && !sawSecond {
					sawSecond = true
					after := time.Since(tKill)
					t.Logf("%s after the fault: %q", after.Round(time.Millisecond), r.Message)
					if after > 30*time.Second {
						t.Errorf("%s asked %s %s after %s failed, want within 30s", dst.Name, second.Name, after.Round(time.Second), first.Name)
					}
				}
			}
			if harness.ServiceReady(got) == nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	ready := time.Since(tKill)
	if !sawSecond {
		t.Errorf("%s's status never said it pulls from %s", dst.Name, second.Name)
	}
	t.Logf("Ready %s after the fault (%s), on %v", ready.Round(time.Millisecond), fault, replicaNodes(final))
	if !onNode(final, dst.Name) {
		t.Fatalf("the replica is not on %s: %v", dst.Name, replicaNodes(final))
	}
	if _, err := dst.Docker(ctx, "image", "inspect", img); err != nil {
		t.Fatalf("%s does not hold %s: %v", dst.Name, img, err)
	}
	out, err := c.Ctl(ctx, dst, "get", "events", "--for", "svc/"+svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("events:\n%s", out)
	if !strings.Contains(out, "from node "+second.Name) {
		t.Errorf("no Pulled event names %s as the source", second.Name)
	}
	if strings.Contains(out, "from node "+first.Name+" (") {
		t.Errorf("a Pulled event names the killed %s as the source", first.Name)
	}
	log, err := os.ReadFile(filepath.Join(dst.LogDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, img) && (strings.Contains(l, "peer transfer failed") || strings.Contains(l, "image copied from a peer")) {
			t.Logf("%s: %s", dst.Name, l)
		}
	}
	if strings.Contains(string(log), "pulling from its registry") {
		t.Errorf("%s fell back to the registry", dst.Name)
	}
	if !strings.Contains(string(log), "peer transfer failed") || !strings.Contains(string(log), "node="+first.Name) {
		t.Errorf("%s's log does not say the transfer from %s failed", dst.Name, first.Name)
	}
}

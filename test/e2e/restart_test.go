package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// Scenario 9 (issue 11, point 1): every agent restarted in turn under load, as an upgrade or a
// config change would: SIGTERM, and the node's supervisor (nodeinit) starts it again a second
// later on the same data dir. Containers, dockerd and Traefik keep running throughout. An agent
// restart must move nothing and restart nothing: 0 failed requests through every LB, and every
// node runs the very same containers (same IDs) afterwards.
func TestScenario9AgentsRestartedInTurn(t *testing.T) {
	c := startCluster(t, harness.Options{})
	ctx := ctxFor(t, 10*time.Minute)
	const svc, host = "e2e-ar", "ar.e2e.test"
	n := int32(len(c.Nodes))
	// No maxPerNode: the scheduler must be free to re-place a replica elsewhere, which is the
	// failure this scenario is there to catch. Its spread puts one replica on every node.
	if err := putService(ctx, c.Nodes[0], echoService(svc, "constellation-test/echo:1", n, host)); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.WaitServiceReady(ctx, c.Nodes, svc, 2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	waitLBServers(t, ctx, c.LBs(), svc, int(n))
	before, err := containerIDs(ctx, c.Nodes, svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containers before: %v", before)
	for _, node := range c.Nodes {
		if len(before[node.Name]) == 0 {
			t.Fatalf("no replica of %s on %s, so its agent restart would prove nothing: %v", svc, node.Name, before)
		}
	}

	stopWatch := make(chan struct{})
	var serverChanges atomic.Int32
	watching := watchServerChanges(t, ctx, c.LBs(), stopWatch, &serverChanges)
	load := harness.StartLoad(lbTargets(c.LBs(), host, "echo"), 20, 2*time.Second)
	time.Sleep(2 * time.Second)
	var restartErr error
	for _, node := range c.Nodes {
		t0 := time.Now()
		t.Logf("%s SIGTERM %s's agent", t0.Format("15:04:05.000"), node.Name)
		if restartErr = node.RestartAgent(ctx, time.Minute); restartErr != nil {
			break
		}
		if restartErr = node.WaitReady(ctx, time.Minute); restartErr != nil {
			break
		}
		t.Logf("%s's agent back and ready after %s", node.Name, time.Since(t0).Round(time.Millisecond))
		// Before the next one: the Service is Ready and every LB routes to all replicas again.
		if _, restartErr = harness.WaitServiceReady(ctx, c.Nodes, svc, 2*time.Minute, nil); restartErr != nil {
			break
		}
		waitLBServers(t, ctx, c.LBs(), svc, int(n))
		time.Sleep(2 * time.Second)
	}
	time.Sleep(2 * time.Second)
	st := load.Stop()
	close(stopWatch)
	watching.Wait()
	t.Logf("load during %d agent restarts: %s", len(c.Nodes), st)
	logFailures(t, st, 20)
	if restartErr != nil {
		// Still say what happened to the containers: that is usually why it did not settle.
		t.Error(restartErr)
	}

	after, err := containerIDs(ctx, c.Nodes, svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containers after: %v", after)
	replaced := 0
	for _, node := range c.Nodes {
		if !slices.Equal(before[node.Name], after[node.Name]) {
			replaced++
			t.Errorf("%s: containers of %s were %v before the agent restarts and are %v after", node.Name, svc, before[node.Name], after[node.Name])
		}
	}
	if st.Failed != 0 {
		t.Errorf("%d of %d requests failed while the agents restarted in turn", st.Failed, st.Sent)
	}
	// The restarting node's endpoints stay in every LB's running Traefik (sampled every 200ms).
	if n := serverChanges.Load(); n != 0 {
		t.Errorf("the LBs' Traefik server lists changed %d time(s) during the agent restarts (see the log above)", n)
	}
	if final, err := c.Nodes[0].Service(ctx, svc); err == nil {
		t.Logf("replicas per node after: %v; %d node(s) with replaced containers", replicaNodes(final), replaced)
	}
}

// containerIDs lists, per node, the IDs and states of every container of service (running or
// not), sorted: a replaced container shows as a new ID, a stopped one as its state.
func containerIDs(ctx context.Context, nodes []*harness.Node, service string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, n := range nodes {
		s, err := n.Docker(ctx, "ps", "-a", "--filter", "label=constellation.service="+service,
			"--format", "{{.ID}} {{.State}} replica={{.Label \"constellation.replica\"}}")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		var ids []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			if l != "" {
				ids = append(ids, l)
			}
		}
		slices.Sort(ids)
		out[n.Name] = ids
	}
	return out, nil
}

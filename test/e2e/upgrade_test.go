package e2e

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// upgradeFrom is the release the upgrade scenario starts from: the last tree that landed before
// API levels existed (its agents announce none, so they count as level 1). Override with
// CONSTELLATION_E2E_UPGRADE_FROM=<commit>; the clone must hold that commit.
const upgradeFrom = "0a5f8a9"

// Scenario 16 (issue 18, point 4): upgrade in place. Three nodes start on the agent built from
// an earlier commit; under load, each node's agent binary is replaced by this tree's and the
// agent restarted (as a package upgrade and `systemctl restart` would), one node at a time.
// Nothing may fail or move: 0 failed requests through the LBs, the very same containers on
// every node afterwards. While old and new agents share the cluster, a kind the old ones cannot
// store (Config) is refused by admission with the node that holds it back; once every agent is
// new it is accepted, and stored on every member.
func TestScenario16UpgradeInPlace(t *testing.T) {
	from := upgradeFrom
	if v := os.Getenv("CONSTELLATION_E2E_UPGRADE_FROM"); v != "" {
		from = v
	}
	bctx := ctxFor(t, 10*time.Minute)
	dir := t.TempDir()
	t0 := time.Now()
	old, err := harness.BuildAgentAt(bctx, from, dir, "e2e-old-"+from)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built the agent at %s in %s", from, time.Since(t0).Round(time.Second))

	c := startCluster(t, harness.Options{AgentBinary: old})
	ctx := ctxFor(t, 15*time.Minute)
	const svc, host = "e2e-up", "up.e2e.test"
	n := int32(len(c.Nodes))
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
	for _, node := range c.Nodes {
		if len(before[node.Name]) == 0 {
			t.Fatalf("no replica of %s on %s, so its upgrade would prove little: %v", svc, node.Name, before)
		}
	}

	load := harness.StartLoad(lbTargets(c.LBs(), host, "echo"), 20, 2*time.Second)
	time.Sleep(2 * time.Second)
	var upErr error
	// The worker first, then the load balancers, as an operator would.
	order := slices.Clone(c.Nodes)
	slices.Reverse(order)
	for i, node := range order {
		t1 := time.Now()
		if upErr = node.ReplaceAgent(ctx, c.Art.Agent, time.Minute); upErr != nil {
			break
		}
		if upErr = node.WaitReady(ctx, time.Minute); upErr != nil {
			break
		}
		t.Logf("%s upgraded: new agent ready after %s", node.Name, time.Since(t1).Round(time.Millisecond))
		if _, upErr = harness.WaitServiceReady(ctx, c.Nodes, svc, 2*time.Minute, nil); upErr != nil {
			break
		}
		waitLBServers(t, ctx, c.LBs(), svc, int(n))
		if i == 0 {
			// Mixed versions: the new agent's admission refuses what the old members could
			// not store, and names one of them.
			err := putConfig(ctx, node, "e2e-up-mixed")
			var ce *client.Error
			if !errors.As(err, &ce) || ce.StatusCode != 422 || ce.Field != "kind" || !strings.Contains(ce.Message, "e2e-old-"+from) {
				t.Errorf("a Config while %s still run the old agent: got %v, want 422 on kind naming an old node", others(c.Nodes, node)[0].Name, err)
			} else {
				t.Logf("mixed cluster refuses a Config: %s", ce.Message)
			}
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(2 * time.Second)
	st := load.Stop()
	t.Logf("load during the upgrade of %d agents: %s", len(c.Nodes), st)
	logFailures(t, st, 20)
	if upErr != nil {
		t.Error(upErr)
	}
	if st.Failed != 0 {
		t.Errorf("%d of %d requests failed during the upgrade", st.Failed, st.Sent)
	}
	after, err := containerIDs(ctx, c.Nodes, svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range c.Nodes {
		if !slices.Equal(before[node.Name], after[node.Name]) {
			t.Errorf("%s: containers of %s were %v before the upgrade and are %v after", node.Name, svc, before[node.Name], after[node.Name])
		}
	}
	if upErr != nil {
		return
	}
	// Every agent is new and has announced it: the Config is accepted, and every member has it.
	if err := waitUntil(ctx, 30*time.Second, func() error { return putConfig(ctx, c.Nodes[0], "e2e-up-after") }); err != nil {
		t.Fatalf("a Config once every agent is upgraded: %v", err)
	}
	for _, node := range c.Nodes {
		if err := waitUntil(ctx, 30*time.Second, func() error {
			_, err := node.Client().Get(ctx, v1.KindConfig, "e2e-up-after")
			return err
		}); err != nil {
			t.Errorf("%s does not serve the Config written after the upgrade: %v", node.Name, err)
		}
	}
}

func putConfig(ctx context.Context, n *harness.Node, name string) error {
	cfg := &v1.Config{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindConfig}}
	cfg.Metadata.Name = name
	cfg.Spec.Data = map[string]string{"app.conf": "upgraded = true\n"}
	_, err := n.Client().Put(ctx, cfg, client.PutOptions{})
	return err
}

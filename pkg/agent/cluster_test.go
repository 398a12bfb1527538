package agent

import (
	"context"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/spec"
)

// TestThreeAgentsFormAClusterAndSurviveALoss starts three whole agents on the replicated store,
// joined through the first one's API with a shared token: every node sees the others through
// gossip, all three become voters, and after one agent stops the other two still accept writes.
func TestThreeAgentsFormAClusterAndSurviveALoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents with raft stores; run without -short")
	}
	withRaft := raftAgents(t)
	clientFor := func(a *Agent) *client.Client {
		c, err := client.New(client.Config{Server: a.APIAddress(), Token: "cluster-secret"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a1, _ := startAgent(t, "n1", withRaft(""))
	a2, _ := startAgent(t, "n2", withRaft(a1.APIAddress()))
	stop3, a3 := startAgentStoppable(t, "n3", withRaft(a1.APIAddress()))
	c1, c2 := clientFor(a1), clientFor(a2)
	ctx := context.Background()

	for _, a := range []*Agent{a1, a2, a3} {
		eventually(t, "every node alive in "+a.cfg.Node.Name+"'s gossip view", func() bool {
			alive := 0
			for _, n := range a.View().Nodes() {
				if n.Alive {
					alive++
				}
			}
			return alive == 3
		})
	}
	eventually(t, "three voters", func() bool {
		voters := 0
		for _, m := range a1.raft.Members() {
			if m.Role == v1.RaftLeader || m.Role == v1.RaftFollower {
				voters++
			}
		}
		return voters == 3
	})

	sec := spec.Secret("before", map[string]string{"k": "v"})
	sec.Default()
	if _, err := c1.Put(ctx, sec, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	stop3()
	after := spec.Secret("after", map[string]string{"k": "v"})
	after.Default()
	eventually(t, "a write accepted with one node down", func() bool {
		_, err := c2.Put(ctx, after, client.PutOptions{})
		return err == nil
	})
	for _, name := range []string{"before", "after"} {
		if _, err := c1.Get(ctx, v1.KindSecret, name); err != nil {
			t.Fatalf("secret %s on n1: %v", name, err)
		}
	}
}

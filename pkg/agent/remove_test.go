package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// TestRemoveDeadNodeAndReplaceIt is the repair an operator does after losing a machine for
// good: `ctl node remove` refuses while the node is alive and for a removal that would break
// quorum, removes the dead one from raft with its Node object, and a replacement with the same
// name and a fresh data dir joins and becomes a voter.
func TestRemoveDeadNodeAndReplaceIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four agents with raft stores; run without -short")
	}
	withRaft := raftAgents(t)
	a1, _ := startAgent(t, "n1", withRaft(""))
	stop2, _ := startAgentStoppable(t, "n2", withRaft(a1.APIAddress()))
	stop3, _ := startAgentStoppable(t, "n3", withRaft(a1.APIAddress()))
	c1, err := client.New(client.Config{Server: a1.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	voters := func(a *Agent) int {
		n := 0
		for _, m := range a.raft.Members() {
			if m.Role == v1.RaftLeader || m.Role == v1.RaftFollower {
				n++
			}
		}
		return n
	}
	eventually(t, "three voters", func() bool { return voters(a1) == 3 })
	for _, name := range []string{"n2", "n3"} {
		eventually(t, "Node "+name+" registered", func() bool { _, err := c1.Get(ctx, v1.KindNode, name); return err == nil })
	}
	eventually(t, "every node alive in n1's gossip view", func() bool {
		alive := 0
		for _, n := range a1.View().Nodes() {
			if n.Alive {
				alive++
			}
		}
		return alive == 3
	})
	refused := func(name string, force bool, want string) {
		t.Helper()
		_, err := c1.RemoveNode(ctx, name, client.RemoveNodeOptions{Force: force})
		if client.StatusCode(err) != 409 || !strings.Contains(err.Error(), want) {
			t.Fatalf("remove %s (force %v): err = %v, want 409 saying %q", name, force, err, want)
		}
	}
	refused("n3", false, "alive")
	refused("n1", true, "answering this request")

	stop3()
	gossipDead := func(name string) func() bool {
		return func() bool {
			for _, n := range a1.View().Nodes() {
				if n.Name == name {
					return !n.Alive
				}
			}
			return true
		}
	}
	eventuallyWithin(t, 60*time.Second, "n3 dead in n1's gossip view", gossipDead("n3"))
	// With n3 dead, removing live n2 (even forced) would leave two voters with one alive.
	refused("n2", true, "would leave 2 voters with 1 alive")

	var res client.MemberRemoval
	eventually(t, "n3 removed", func() bool {
		// The leader may still count n3 as recently heard from for an election timeout.
		res, err = c1.RemoveNode(ctx, "n3", client.RemoveNodeOptions{})
		return err == nil
	})
	if !res.RemovedMember || !res.DeletedNode {
		t.Fatalf("removal of n3: %+v, want the member and the Node object removed", res)
	}
	if _, err := c1.Get(ctx, v1.KindNode, "n3"); !client.IsNotFound(err) {
		t.Fatalf("Node n3 after removal: err = %v, want not found", err)
	}
	if _, err := c1.RemoveNode(ctx, "n3", client.RemoveNodeOptions{}); !client.IsNotFound(err) {
		t.Fatalf("second removal of n3: err = %v, want 404", err)
	}

	// The replacement: same name, fresh data dir (startAgentStoppable makes a new one).
	_, a3b := startAgentStoppable(t, "n3", withRaft(a1.APIAddress()))
	eventuallyWithin(t, 60*time.Second, "three voters with the replacement", func() bool {
		return voters(a1) == 3 && a3b.raft.Role() != v1.RaftLearner && a3b.raft.Role() != v1.RaftNone
	})
	eventually(t, "Node n3 registered again", func() bool { _, err := c1.Get(ctx, v1.KindNode, "n3"); return err == nil })
	// Three live voters again: losing n2 leaves a quorum.
	stop2()
	eventually(t, "a write with n2 down", func() bool {
		o, err := c1.Get(ctx, v1.KindNode, "n1")
		if err != nil {
			return false
		}
		n := o.(*v1.Node)
		n.Spec.Unschedulable = !n.Spec.Unschedulable
		_, err = c1.Put(ctx, n, client.PutOptions{})
		return err == nil
	})
}

package gossip

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// An agent restart: the others see "restarting", keep its replicas listed, and when the new
// run comes back (a new process, a new epoch) its first state already carries the replicas its
// predecessor saved, so no peer ever sees the node with none.
func TestRestartKeepsReplicasListed(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "gossip-state.json")
	nodes := startCluster(t, "a", "b")
	c := startLoopback(t, "c", func(cfg *Config) { cfg.StateFile = stateFile })
	if _, err := c.g.Join([]string{nodes[0].addr}); err != nil {
		t.Fatal(err)
	}
	all := append(nodes, c)
	c.g.SetLocalReplicas([]observed.Replica{replica("c", "web", 0, v1.ReplicaRunning), replica("c", "web", 1, v1.ReplicaRunning)})
	want := "c/web/0/running/healthy/127.0.0.1:30000 c/web/1/running/healthy/127.0.0.1:30001"
	if got := converged(t, all, 5*time.Second); got != want {
		t.Fatalf("before: %s", got)
	}

	// Watch a's view from now on: c's replicas must never disappear from it.
	var mu sync.Mutex
	var gaps []string
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			ch := nodes[0].set.Changed()
			if got := replicaSummary(nodes[0].set); got != want {
				mu.Lock()
				gaps = append(gaps, got)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-ch:
			}
		}
	}()

	if err := c.g.LeaveForRestart(time.Second); err != nil {
		t.Fatal(err)
	}
	_ = c.g.Shutdown()
	for _, n := range nodes {
		eventually(t, 5*time.Second, n.name+" sees c restarting", func() error {
			cn, _ := nodeOf(n.set, "c")
			if cn.Alive || cn.State != StateRestarting {
				return fmt.Errorf("c = %+v", cn)
			}
			return nil
		})
	}

	_, port, _ := splitBind(c.addr)
	c2 := startLoopbackAt(t, "c", port, func(cfg *Config) { cfg.StateFile = stateFile })
	if got := len(c2.g.Restored()); got != 2 {
		t.Fatalf("restored %d replicas, want 2", got)
	}
	if _, err := c2.g.Join([]string{nodes[0].addr}); err != nil {
		t.Fatal(err)
	}
	all = append(nodes, c2)
	for _, n := range all {
		eventually(t, 10*time.Second, n.name+" sees c back", func() error {
			if got := aliveNames(n.set); got != "a,b,c" {
				return fmt.Errorf("alive %q", got)
			}
			return nil
		})
	}
	// The node reconciler then publishes the same replicas: nothing changes.
	c2.g.SetLocalReplicas([]observed.Replica{replica("c", "web", 0, v1.ReplicaRunning), replica("c", "web", 1, v1.ReplicaRunning)})
	if got := converged(t, all, 5*time.Second); got != want {
		t.Fatalf("after: %s", got)
	}
	close(stop)
	<-watched
	mu.Lock()
	defer mu.Unlock()
	if len(gaps) > 0 {
		t.Fatalf("a's view lost c's replicas during the restart: %q", gaps)
	}
}

func TestSavedStateIsUsedOnceAndOnlyWhenFresh(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_800_000_000, 0).UTC()
	path := filepath.Join(dir, "state.json")
	rs := []observed.Replica{replica("n1", "web", 0, v1.ReplicaRunning)}
	if err := saveState(path, savedState{Node: "n1", SavedAt: now, Replicas: rs}); err != nil {
		t.Fatal(err)
	}
	got, err := loadSavedState(path, "n1", now.Add(time.Minute), 10*time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("fresh state: %v %v", got, err)
	}
	if got, err := loadSavedState(path, "n1", now.Add(time.Minute), 10*time.Minute); err != nil || got != nil {
		t.Fatalf("a saved state must be used once (a later crash must not replay it): %v %v", got, err)
	}
	_ = saveState(path, savedState{Node: "n1", SavedAt: now, Replicas: rs})
	if got, err := loadSavedState(path, "n1", now.Add(11*time.Minute), 10*time.Minute); err != nil || got != nil {
		t.Fatalf("a stale state must be ignored: %v %v", got, err)
	}
	_ = saveState(path, savedState{Node: "n2", SavedAt: now, Replicas: rs})
	if _, err := loadSavedState(path, "n1", now, 10*time.Minute); err == nil {
		t.Fatal("another node's state must be refused")
	}
}

func TestDepartedNodesArePruned(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	g := newBare(t, "a", clk)
	g.applyUpdate(wireUpdate{Node: "b", Epoch: 1, Entry: entry("web", 0, 1, "running")})
	g.applyUpdate(wireUpdate{Node: "c", Epoch: 1, Entry: entry("web", 1, 1, "running")})
	g.applyUpdate(wireUpdate{Node: "d", Epoch: 1, Entry: entry("web", 2, 1, "running")})
	g.members["b"] = &member{node: observed.Node{Name: "b", State: StateLeft, LastChange: clk.Now()}}
	g.members["c"] = &member{node: observed.Node{Name: "c", State: StateDead, LastChange: clk.Now()}}
	g.members["d"] = &member{node: observed.Node{Name: "d", State: StateAlive, Alive: true, LastChange: clk.Now()}}
	for _, n := range []string{"b", "c", "d"} {
		g.set.SetNode(g.members[n].node)
	}
	clk.Step(g.cfg.ForgetLeftAfter + time.Second)
	g.pruneDeparted()
	if _, ok := g.members["b"]; ok || g.state.nodes["b"] != nil {
		t.Fatal("a node that left an hour ago must be forgotten")
	}
	if _, ok := nodeOf(g.set, "b"); ok {
		t.Fatal("the view still lists b")
	}
	if g.members["c"] == nil || g.members["d"] == nil {
		t.Fatal("a dead node is retried for ReconnectTimeout and an alive one is kept")
	}
	clk.Step(g.cfg.ReconnectTimeout)
	g.pruneDeparted()
	if g.members["c"] != nil || g.state.nodes["c"] != nil || g.members["d"] == nil {
		t.Fatalf("after ReconnectTimeout: c=%v d=%v", g.members["c"], g.members["d"])
	}
	g.Forget("d")
	if g.members["d"] != nil || g.state.nodes["d"] != nil {
		t.Fatal("Forget left state behind")
	}
	if _, ok := nodeOf(g.set, "d"); ok {
		t.Fatal("Forget left d in the view")
	}
}

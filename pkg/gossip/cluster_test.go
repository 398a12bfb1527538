package gossip

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func startCluster(t *testing.T, names ...string) []*tnode {
	t.Helper()
	var nodes []*tnode
	for _, n := range names {
		nodes = append(nodes, startLoopback(t, n, nil))
	}
	joinAll(t, nodes)
	want := ""
	for i, n := range names {
		if i > 0 {
			want += ","
		}
		want += n
	}
	for _, n := range nodes {
		eventually(t, 5*time.Second, n.name+" sees everyone", func() error {
			if got := aliveNames(n.set); got != want {
				return fmt.Errorf("alive %q, want %q", got, want)
			}
			return nil
		})
	}
	return nodes
}

func converged(t *testing.T, nodes []*tnode, timeout time.Duration) string {
	t.Helper()
	var want string
	eventually(t, timeout, "observed state converges", func() error {
		want = replicaSummary(nodes[0].set)
		for _, n := range nodes[1:] {
			if got := replicaSummary(n.set); got != want {
				return fmt.Errorf("%s has %q, %s has %q", nodes[0].name, want, n.name, got)
			}
		}
		return nil
	})
	return want
}

func TestJoinMetadataAndConvergence(t *testing.T) {
	nodes := startCluster(t, "a", "b", "c")
	nodes[0].g.SetLocalReplicas([]observed.Replica{replica("a", "web", 0, v1.ReplicaRunning)})
	nodes[1].g.SetLocalReplicas([]observed.Replica{replica("b", "web", 1, v1.ReplicaRunning), replica("b", "db", 0, v1.ReplicaCreated)})
	nodes[2].g.SetLocalReplicas([]observed.Replica{replica("c", "web", 2, v1.ReplicaRunning)})
	got := converged(t, nodes, 5*time.Second)
	want := "a/web/0/running/healthy/127.0.0.1:30000 b/db/0/created/healthy/127.0.0.1:30000 b/web/1/running/healthy/127.0.0.1:30001 c/web/2/running/healthy/127.0.0.1:30002"
	if got != want {
		t.Fatalf("replicas:\n got %s\nwant %s", got, want)
	}
	// A replica arrives whole: every field survives the wire.
	for _, r := range nodes[2].set.Replicas() {
		if r.Node == "b" && r.Service == "web" {
			w := replica("b", "web", 1, v1.ReplicaRunning)
			if r.ContainerID != w.ContainerID || r.SpecHash != w.SpecHash || !r.UpdatedAt.Equal(w.UpdatedAt) {
				t.Fatalf("replica over the wire = %+v, want %+v", r, w)
			}
		}
	}
	// Metadata travels in memberlist's node meta.
	n, ok := nodeOf(nodes[0].set, "c")
	if !ok || n.Labels["zone"] != "z-c" || n.API != "127.0.0.1:17480" || n.Raft != "127.0.0.1:17481" || n.Version != "test" || n.Gossip != nodes[2].addr || n.Advertise != "127.0.0.1" {
		t.Fatalf("node c seen by a = %+v", n)
	}
	if m := nodes[1].g.Members(); len(m) != 3 || m[0].Name != "a" || m[2].Name != "c" {
		t.Fatalf("Members() = %+v", m)
	}

	// A change is broadcast; UpdatedAt alone is not a change.
	r := replica("a", "web", 0, v1.ReplicaRunning)
	r.Health = v1.HealthUnhealthy
	nodes[0].g.SetLocalReplicas([]observed.Replica{r})
	converged(t, nodes, 5*time.Second)
	eventually(t, 5*time.Second, "unhealthy seen on c", func() error {
		for _, r := range nodes[2].set.Replicas() {
			if r.Node == "a" && r.Health != v1.HealthUnhealthy {
				return fmt.Errorf("health %s", r.Health)
			}
		}
		return nil
	})
	before := counter(t, nodes[0].reg, "constellation_gossip_local_updates_total", nil)
	r.UpdatedAt = r.UpdatedAt.Add(time.Hour)
	nodes[0].g.SetLocalReplicas([]observed.Replica{r})
	if after := counter(t, nodes[0].reg, "constellation_gossip_local_updates_total", nil); after != before {
		t.Fatalf("UpdatedAt-only change was broadcast: %v → %v", before, after)
	}

	// Removal reaches everyone.
	nodes[1].g.SetLocalReplicas([]observed.Replica{replica("b", "web", 1, v1.ReplicaRunning)})
	got = converged(t, nodes, 5*time.Second)
	if want := "a/web/0/running/unhealthy/127.0.0.1:30000 b/web/1/running/healthy/127.0.0.1:30001 c/web/2/running/healthy/127.0.0.1:30002"; got != want {
		t.Fatalf("after removal:\n got %s\nwant %s", got, want)
	}
}

func TestLeaveIsNotDeath(t *testing.T) {
	nodes := startCluster(t, "a", "b", "c")
	nodes[2].g.SetLocalReplicas([]observed.Replica{replica("c", "web", 0, v1.ReplicaRunning)})
	converged(t, nodes, 5*time.Second)
	if err := nodes[2].g.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[:2] {
		eventually(t, 5*time.Second, n.name+" sees c left", func() error {
			c, _ := nodeOf(n.set, "c")
			if c.Alive || c.State != StateLeft {
				return fmt.Errorf("c = %+v", c)
			}
			if s := replicaSummary(n.set); s != "" {
				return fmt.Errorf("replicas of a departed node still listed: %s", s)
			}
			return nil
		})
	}
	if got := counter(t, nodes[0].reg, "constellation_gossip_member_events_total", map[string]string{"event": "left"}); got != 1 {
		t.Fatalf("left events counted: %v", got)
	}
}

func TestKillThenRejoin(t *testing.T) {
	nodes := startCluster(t, "a", "b", "c")
	nodes[2].g.SetLocalReplicas([]observed.Replica{replica("c", "web", 0, v1.ReplicaRunning), replica("c", "web", 1, v1.ReplicaRunning)})
	converged(t, nodes, 5*time.Second)

	killed := time.Now()
	if err := nodes[2].g.Shutdown(); err != nil { // no Leave: a crash
		t.Fatal(err)
	}
	for _, n := range nodes[:2] {
		eventually(t, 10*time.Second, n.name+" sees c dead", func() error {
			c, _ := nodeOf(n.set, "c")
			if c.Alive || c.State != StateDead {
				return fmt.Errorf("c = %+v", c)
			}
			if s := replicaSummary(n.set); s != "" {
				return fmt.Errorf("replicas of a dead node still listed: %s", s)
			}
			return nil
		})
	}
	t.Logf("both survivors saw the death after %s", time.Since(killed).Round(time.Millisecond))

	// The node comes back (a new process: new epoch) with one replica fewer. The stale one must
	// not come back with it.
	_, port, _ := splitBind(nodes[2].addr)
	c2 := startLoopbackAt(t, "c", port, nil)
	c2.g.SetLocalReplicas([]observed.Replica{replica("c", "web", 1, v1.ReplicaExited)})
	if _, err := c2.g.Join([]string{nodes[0].addr}); err != nil {
		t.Fatal(err)
	}
	all := []*tnode{nodes[0], nodes[1], c2}
	for _, n := range all {
		eventually(t, 10*time.Second, n.name+" sees c back", func() error {
			if got := aliveNames(n.set); got != "a,b,c" {
				return fmt.Errorf("alive %q", got)
			}
			return nil
		})
	}
	if got := converged(t, all, 5*time.Second); got != "c/web/1/exited/healthy/127.0.0.1:30001" {
		t.Fatalf("after rejoin: %s", got)
	}
}

func TestPartitionHeals(t *testing.T) {
	nodes := startCluster(t, "a", "b", "c", "d")
	for _, n := range nodes {
		n.g.SetLocalReplicas([]observed.Replica{replica(n.name, "web", 0, v1.ReplicaRunning)})
	}
	converged(t, nodes, 5*time.Second)

	// {a,b} | {c,d}
	left, right := nodes[:2], nodes[2:]
	for _, x := range left {
		for _, y := range right {
			x.filter.Block(y.addr)
			y.filter.Block(x.addr)
		}
	}
	for _, n := range nodes {
		want := "a,b"
		if n.name >= "c" {
			want = "c,d"
		}
		eventually(t, 10*time.Second, n.name+" sees the partition", func() error {
			if got := aliveNames(n.set); got != want {
				return fmt.Errorf("alive %q, want %q", got, want)
			}
			return nil
		})
	}
	// While cut off, d's container changes: the other side cannot know.
	nodes[3].g.SetLocalReplicas([]observed.Replica{replica("d", "web", 0, v1.ReplicaExited), replica("d", "api", 0, v1.ReplicaRunning)})
	// Let the change spread on d's side and d's broadcasts run out of retransmits while cut
	// off, so that a and b can only learn it by anti-entropy after the heal.
	eventually(t, 10*time.Second, "d's change spent on its side of the partition", func() error {
		if q := nodes[3].g.queue.NumQueued(); q != 0 {
			return fmt.Errorf("d still has %d broadcasts queued", q)
		}
		if got := summary(nodes[2].set.NodeReplicas("d")); !strings.Contains(got, "d/api/0/running") {
			return fmt.Errorf("c sees d's replicas as %q", got)
		}
		return nil
	})

	for _, n := range nodes {
		n.filter.Unblock()
	}
	for _, n := range nodes {
		eventually(t, 20*time.Second, n.name+" sees everyone again", func() error {
			if got := aliveNames(n.set); got != "a,b,c,d" {
				return fmt.Errorf("alive %q", got)
			}
			return nil
		})
	}
	got := converged(t, nodes, 10*time.Second)
	want := "a/web/0/running/healthy/127.0.0.1:30000 b/web/0/running/healthy/127.0.0.1:30000 c/web/0/running/healthy/127.0.0.1:30000 d/api/0/running/healthy/127.0.0.1:30000 d/web/0/exited/healthy/127.0.0.1:30000"
	if got != want {
		t.Fatalf("after heal:\n got %s\nwant %s", got, want)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	a := startLoopback(t, "a", nil)
	b := startLoopback(t, "b", func(c *Config) { c.EncryptionKey = []byte("ffffffffffffffffffffffffffffffff") })
	if _, err := b.g.Join([]string{a.addr}); err == nil {
		t.Fatal("join with a wrong key succeeded")
	}
	time.Sleep(500 * time.Millisecond)
	if got := aliveNames(a.set); got != "a" {
		t.Fatalf("a sees %q", got)
	}
}

func TestKeyRotation(t *testing.T) {
	nodes := startCluster(t, "a", "b", "c")
	newKey := []byte("NEWKEY-456789abcdef0123456789abc")
	for _, n := range nodes {
		if err := n.g.InstallKey(newKey); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := n.g.UseKey(newKey); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := n.g.RemoveKey(testKey); err != nil {
			t.Fatal(err)
		}
		if ks := n.g.Keys(); len(ks) != 1 || string(ks[0]) != string(newKey) {
			t.Fatalf("%s keys after rotation: %d", n.name, len(ks))
		}
	}
	nodes[0].g.SetLocalReplicas([]observed.Replica{replica("a", "web", 0, v1.ReplicaRunning)})
	converged(t, nodes, 5*time.Second)
	if got := replicaSummary(nodes[2].set); got == "" {
		t.Fatal("nothing gossiped after rotation")
	}
	// A node still on the old key alone is shut out.
	d := startLoopback(t, "d", nil)
	if _, err := d.g.Join([]string{nodes[0].addr}); err == nil {
		t.Fatal("old key still accepted")
	}
	time.Sleep(600 * time.Millisecond)
	for _, n := range nodes {
		if got := aliveNames(n.set); got != "a,b,c" {
			t.Fatalf("%s sees %q", n.name, got)
		}
	}
}

func TestPeerGarbageIsDroppedAndCounted(t *testing.T) {
	nodes := startCluster(t, "a", "b")
	a, b := nodes[0], nodes[1]
	var target = b.g.ml.LocalNode()
	junk := [][]byte{
		{},                          // empty
		{9, kindUpdate, '{', '}'},   // unknown version
		{wireVersion, 77, '{', '}'}, // unknown kind
		append([]byte{wireVersion, kindUpdate}, []byte(`{"n":"x","e":1,"r":{"q":1,"s":"","i":0}}`)...), // invalid content
		append([]byte{wireVersion, kindUpdate}, []byte(`{"n":`)...),                                    // truncated JSON
		append([]byte{wireVersion, kindUpdate}, make([]byte, 5000)...),                                 // oversized
	}
	for _, j := range junk {
		if err := a.g.ml.SendBestEffort(target, j); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	eventually(t, 5*time.Second, "drops counted", func() error {
		// The empty message never reaches the delegate (memberlist drops it), the rest do.
		if got := counter(t, b.reg, "constellation_gossip_messages_dropped_total", nil); got < 5 {
			return fmt.Errorf("dropped = %v", got)
		}
		// Datagrams are handled in any order: wait for the oversized one itself.
		if got := counter(t, b.reg, "constellation_gossip_messages_dropped_total", map[string]string{"reason": "oversized"}); got < 1 {
			return fmt.Errorf("oversized drops = %v", got)
		}
		return nil
	})
	if got := counter(t, b.reg, "constellation_gossip_messages_dropped_total", map[string]string{"reason": "oversized"}); got != 1 {
		t.Fatalf("oversized drops = %v", got)
	}
	// b still works.
	a.g.SetLocalReplicas([]observed.Replica{replica("a", "web", 0, v1.ReplicaRunning)})
	converged(t, nodes, 5*time.Second)
	if replicaSummary(b.set) == "" {
		t.Fatal("b stopped taking updates")
	}
}

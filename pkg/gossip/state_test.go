package gossip

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hashicorp/memberlist"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// newBare returns a Gossip without memberlist, to test the state logic alone.
func newBare(t testing.TB, name string, clk clock.WithTicker) *Gossip {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.DisableEncryption = true
	if clk != nil {
		cfg.Clock = clk
	}
	cfg.Set = observed.NewSet()
	g := &Gossip{
		cfg: cfg, log: slog.New(slog.DiscardHandler), set: cfg.Set,
		state: newReplicaState(name, 100), members: map[string]*member{},
		syncCh: make(chan syncReq, 64), stop: make(chan struct{}), done: make(chan struct{}),
	}
	var err error
	if g.metrics, err = newMetrics(nil, g); err != nil {
		t.Fatal(err)
	}
	g.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 3 }, RetransmitMult: 4}
	return g
}

func entry(svc string, idx int32, seq uint64, state string) wireReplica {
	return wireReplica{Seq: seq, Service: svc, Index: idx, State: state}
}

func summary(rs []observed.Replica) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s/%s/%d/%s", r.Node, r.Service, r.Index, r.State))
	}
	return strings.Join(out, " ")
}

func TestSetLocalReplicasBroadcastsOnlyChanges(t *testing.T) {
	g := newBare(t, "a", nil)
	r0, r1 := replica("a", "web", 0, v1.ReplicaRunning), replica("a", "web", 1, v1.ReplicaRunning)
	g.SetLocalReplicas([]observed.Replica{r0, r1})
	if q := g.queue.NumQueued(); q != 2 {
		t.Fatalf("queued %d, want 2", q)
	}
	g.queue.Reset()
	r0.UpdatedAt = r0.UpdatedAt.Add(time.Minute)
	r1.Node = "someone-else" // the node field is ours to set
	g.SetLocalReplicas([]observed.Replica{r0, r1})
	if q := g.queue.NumQueued(); q != 0 {
		t.Fatalf("no change, queued %d", q)
	}
	r1.State = v1.ReplicaExited
	g.SetLocalReplicas([]observed.Replica{r1})
	if q := g.queue.NumQueued(); q != 2 { // r1 changed, r0 removed
		t.Fatalf("queued %d, want 2", q)
	}
	if got := summary(g.set.NodeReplicas("a")); got != "a/web/1/exited" {
		t.Fatalf("local view %q", got)
	}
	self := g.state.nodes["a"]
	if self.seq != 4 || !self.entries[rkey{"web", 0}].Deleted {
		t.Fatalf("seq %d, entries %+v", self.seq, self.entries)
	}
	// The same update twice replaces the queued one (NamedBroadcast).
	g.queue.Reset()
	r1.State = v1.ReplicaRunning
	g.SetLocalReplicas([]observed.Replica{r1})
	r1.State = v1.ReplicaFailed
	g.SetLocalReplicas([]observed.Replica{r1})
	if q := g.queue.NumQueued(); q != 1 {
		t.Fatalf("queued %d, want 1 (superseded)", q)
	}
}

func TestApplyUpdateOrdering(t *testing.T) {
	g := newBare(t, "a", nil)
	g.set.SetNode(observed.Node{Name: "b", Alive: true})
	up := func(epoch int64, e wireReplica) bool {
		return g.applyUpdate(wireUpdate{Node: "b", Epoch: epoch, Entry: e})
	}
	steps := []struct {
		name  string
		epoch int64
		e     wireReplica
		new   bool
		want  string
	}{
		{"first", 5, entry("web", 0, 2, "running"), true, "b/web/0/running"},
		{"older seq ignored", 5, entry("web", 0, 1, "pending"), false, "b/web/0/running"},
		{"same seq ignored", 5, entry("web", 0, 2, "exited"), false, "b/web/0/running"},
		{"other replica", 5, entry("web", 1, 1, "running"), true, "b/web/0/running b/web/1/running"},
		{"tombstone", 5, wireReplica{Seq: 3, Deleted: true, Service: "web", Index: 0}, true, "b/web/1/running"},
		{"late upsert does not resurrect", 5, entry("web", 0, 2, "running"), false, "b/web/1/running"},
		{"older epoch ignored", 4, entry("db", 0, 9, "running"), false, "b/web/1/running"},
		{"newer epoch restarts the node", 6, entry("db", 0, 1, "running"), true, "b/db/0/running"},
	}
	for _, s := range steps {
		if got := up(s.epoch, s.e); got != s.new {
			t.Fatalf("%s: new = %v", s.name, got)
		}
		if got := summary(g.set.Replicas()); got != s.want {
			t.Fatalf("%s: view %q, want %q", s.name, got, s.want)
		}
	}
	if g.applyUpdate(wireUpdate{Node: "a", Epoch: 999, Entry: entry("x", 0, 1, "running")}) {
		t.Fatal("an update about ourselves was applied")
	}
}

func TestMergeState(t *testing.T) {
	g := newBare(t, "a", nil)
	for _, n := range []string{"b", "c"} {
		g.set.SetNode(observed.Node{Name: n, Alive: true})
	}
	g.applyUpdate(wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 0, 1, "running")})
	g.applyUpdate(wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 1, 2, "running")})

	// c relays an older view of b: per-entry merge, nothing lost.
	g.mergeState(wireState{From: "c", Nodes: []wireNodeState{{Node: "b", Epoch: 5, Seq: 1, Entries: []wireReplica{entry("web", 0, 1, "running")}}}}, false)
	if got := summary(g.set.Replicas()); got != "b/web/0/running b/web/1/running" {
		t.Fatalf("after relay: %q", got)
	}
	// b itself says web/1 is gone (its tombstone was collected): authoritative replace.
	g.mergeState(wireState{From: "b", Nodes: []wireNodeState{{Node: "b", Epoch: 5, Seq: 4, Entries: []wireReplica{entry("web", 0, 3, "exited")}}}}, false)
	if got := summary(g.set.Replicas()); got != "b/web/0/exited" {
		t.Fatalf("after authoritative state: %q", got)
	}
	// An old epoch relayed by c is ignored; a newer one replaces.
	g.mergeState(wireState{From: "c", Nodes: []wireNodeState{{Node: "b", Epoch: 4, Seq: 9, Entries: []wireReplica{entry("old", 0, 9, "running")}}}}, false)
	if got := summary(g.set.Replicas()); got != "b/web/0/exited" {
		t.Fatalf("after old epoch: %q", got)
	}
	g.mergeState(wireState{From: "c", Nodes: []wireNodeState{
		{Node: "b", Epoch: 7, Seq: 1, Entries: []wireReplica{entry("new", 0, 1, "running")}},
		{Node: "c", Epoch: 3, Seq: 1, Entries: []wireReplica{entry("web", 2, 1, "running")}},
	}}, false)
	if got := summary(g.set.Replicas()); got != "b/new/0/running c/web/2/running" {
		t.Fatalf("after new epoch: %q", got)
	}
	// Someone holds a newer epoch of ours: we move past it and re-announce.
	g.SetLocalReplicas([]observed.Replica{replica("a", "web", 5, v1.ReplicaRunning)})
	g.queue.Reset()
	g.mergeState(wireState{From: "c", Nodes: []wireNodeState{{Node: "a", Epoch: 500, Seq: 1}}}, false)
	if g.state.epoch != 501 || g.state.nodes["a"].epoch != 501 || g.queue.NumQueued() != 1 {
		t.Fatalf("epoch %d, queued %d", g.state.epoch, g.queue.NumQueued())
	}
	if got := summary(g.set.NodeReplicas("a")); got != "a/web/5/running" {
		t.Fatalf("our replicas after epoch bump: %q", got)
	}
}

func TestLocalStateRoundTrip(t *testing.T) {
	a := newBare(t, "a", nil)
	a.SetLocalReplicas([]observed.Replica{replica("a", "web", 0, v1.ReplicaRunning), replica("a", "web", 1, v1.ReplicaRunning)})
	a.SetLocalReplicas([]observed.Replica{replica("a", "web", 1, v1.ReplicaRunning)})
	a.applyUpdate(wireUpdate{Node: "c", Epoch: 3, Entry: entry("db", 0, 1, "running")})

	b := newBare(t, "b", nil)
	for _, n := range []string{"a", "c"} {
		b.set.SetNode(observed.Node{Name: n, Alive: true})
	}
	ws, err := decodeState(a.localState(), a.cfg.MaxStateSize)
	if err != nil {
		t.Fatal(err)
	}
	b.mergeState(ws, true)
	if got := summary(b.set.Replicas()); got != "c/db/0/running a/web/1/running" {
		t.Fatalf("b after push/pull: %q", got)
	}
	if !b.state.nodes["a"].entries[rkey{"web", 0}].Deleted {
		t.Fatal("tombstone not carried")
	}

	// Too large: only our own state goes.
	a.cfg.MaxStateSize = 4096
	for i := range 40 {
		a.applyUpdate(wireUpdate{Node: "c", Epoch: 3, Entry: wireReplica{Seq: uint64(i + 2), Service: "svc", Index: int32(i), Message: strings.Repeat("x", 200)}})
	}
	ws, err = decodeState(a.localState(), a.cfg.MaxStateSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws.Nodes) != 1 || ws.Nodes[0].Node != "a" {
		t.Fatalf("oversized state sent %d nodes", len(ws.Nodes))
	}
}

func TestLargeReplicaIsTruncatedToFit(t *testing.T) {
	g := newBare(t, "a", nil)
	r := replica("a", "web", 0, v1.ReplicaFailed)
	r.Message = strings.Repeat("é", 2000)
	r.Ports = map[string]string{}
	for i := range 30 {
		r.Ports[fmt.Sprintf("%d/tcp", 8000+i)] = fmt.Sprintf("192.168.100.100:%d", 40000+i)
	}
	g.SetLocalReplicas([]observed.Replica{r})
	msgs := g.queue.GetBroadcasts(0, 65536)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if len(msgs[0]) > g.cfg.MaxMessageSize {
		t.Fatalf("message of %d bytes, limit %d", len(msgs[0]), g.cfg.MaxMessageSize)
	}
	u, err := decodeUpdate(msgs[0], g.cfg.MaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	if u.Entry.State != "failed" || u.Entry.ContainerID == "" {
		t.Fatalf("essential fields lost: %+v", u.Entry)
	}
}

func TestTombstonesAreCollected(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	g := newBare(t, "a", clk)
	g.SetLocalReplicas([]observed.Replica{replica("a", "web", 0, v1.ReplicaRunning)})
	g.SetLocalReplicas(nil)
	g.applyUpdate(wireUpdate{Node: "b", Epoch: 1, Entry: wireReplica{Seq: 1, Deleted: true, Service: "x", Index: 0}})
	clk.Step(g.cfg.TombstoneTTL - time.Second)
	g.collectTombstones()
	if len(g.state.nodes["a"].entries) != 1 || len(g.state.nodes["b"].entries) != 1 {
		t.Fatal("tombstones collected too early")
	}
	clk.Step(2 * time.Second)
	g.collectTombstones()
	if len(g.state.nodes["a"].entries) != 0 || len(g.state.nodes["b"].entries) != 0 {
		t.Fatal("tombstones not collected")
	}
}

package gossip

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// The merge rules of replicaState, table-tested without memberlist, a lock or a clock.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// stateOf renders what s knows as "node@epoch:seq[svc/idx#seq(state|x) ...]", nodes and
// entries sorted, tombstones as x.
func stateOf(s *replicaState) string {
	var nodes []string
	for name, st := range s.nodes {
		var es []string
		for k, e := range st.entries {
			st := e.State
			if e.Deleted {
				st = "x"
			}
			es = append(es, fmt.Sprintf("%s/%d#%d(%s)", k.service, k.index, e.Seq, st))
		}
		sort.Strings(es)
		nodes = append(nodes, fmt.Sprintf("%s@%d:%d[%s]", name, st.epoch, st.seq, strings.Join(es, " ")))
	}
	sort.Strings(nodes)
	return strings.Join(nodes, " ")
}

func sendsOf(us []wireUpdate) string {
	var out []string
	for _, u := range us {
		out = append(out, fmt.Sprintf("%s@%d:%s/%d#%d", u.Node, u.Epoch, u.Entry.Service, u.Entry.Index, u.Entry.Seq))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func tomb(svc string, idx int32, seq uint64) wireReplica {
	return wireReplica{Seq: seq, Deleted: true, Service: svc, Index: idx}
}

func TestReplicaStateApplyUpdate(t *testing.T) {
	// Each case starts from a with b known at epoch 5: web/0#2 running, web/1#3 tombstone.
	cases := []struct {
		name string
		u    wireUpdate
		news bool
		want string
	}{
		{"newer seq replaces", wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 0, 4, "exited")}, true,
			"a@1:0[] b@5:4[web/0#4(exited) web/1#3(x)]"},
		{"older seq ignored", wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 0, 1, "pending")}, false,
			"a@1:0[] b@5:3[web/0#2(running) web/1#3(x)]"},
		{"same seq ignored", wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 0, 2, "exited")}, false,
			"a@1:0[] b@5:3[web/0#2(running) web/1#3(x)]"},
		{"tombstone wins over a late upsert", wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 1, 2, "running")}, false,
			"a@1:0[] b@5:3[web/0#2(running) web/1#3(x)]"},
		{"newer upsert replaces a tombstone", wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 1, 7, "running")}, true,
			"a@1:0[] b@5:7[web/0#2(running) web/1#7(running)]"},
		{"new tombstone", wireUpdate{Node: "b", Epoch: 5, Entry: tomb("web", 0, 4)}, true,
			"a@1:0[] b@5:4[web/0#4(x) web/1#3(x)]"},
		{"older epoch ignored", wireUpdate{Node: "b", Epoch: 4, Entry: entry("db", 0, 9, "running")}, false,
			"a@1:0[] b@5:3[web/0#2(running) web/1#3(x)]"},
		{"newer epoch starts the node afresh", wireUpdate{Node: "b", Epoch: 6, Entry: entry("db", 0, 1, "running")}, true,
			"a@1:0[] b@6:1[db/0#1(running)]"},
		{"unknown node", wireUpdate{Node: "c", Epoch: 2, Entry: entry("db", 0, 1, "running")}, true,
			"a@1:0[] b@5:3[web/0#2(running) web/1#3(x)] c@2:1[db/0#1(running)]"},
		{"about ourselves ignored", wireUpdate{Node: "a", Epoch: 99, Entry: entry("x", 0, 1, "running")}, false,
			"a@1:0[] b@5:3[web/0#2(running) web/1#3(x)]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newReplicaState("a", 1)
			s.applyUpdate(wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 0, 2, "running")}, t0)
			s.applyUpdate(wireUpdate{Node: "b", Epoch: 5, Entry: tomb("web", 1, 3)}, t0)
			if got := s.applyUpdate(c.u, t0); got != c.news {
				t.Errorf("news = %v, want %v", got, c.news)
			}
			if got := stateOf(s); got != c.want {
				t.Errorf("state\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestReplicaStateMergeState(t *testing.T) {
	// Each case starts from a (epoch 1, own web/9#1) with b known at epoch 5: web/0#1 and
	// web/1#2 running.
	nodeB := func(epoch int64, seq uint64, es ...wireReplica) wireNodeState {
		return wireNodeState{Node: "b", Epoch: epoch, Seq: seq, Entries: es}
	}
	cases := []struct {
		name    string
		ws      wireState
		join    bool
		want    string
		send    string
		changed string
	}{
		{"relayed older view merges entry by entry, nothing lost",
			wireState{From: "c", Nodes: []wireNodeState{nodeB(5, 1, entry("web", 0, 1, "running"))}}, false,
			"a@1:1[web/9#1(running)] b@5:2[web/0#1(running) web/1#2(running)]", "", ""},
		{"relayed newer entry is merged and passed on",
			wireState{From: "c", Nodes: []wireNodeState{nodeB(5, 3, entry("web", 0, 3, "exited"))}}, false,
			"a@1:1[web/9#1(running)] b@5:3[web/0#3(exited) web/1#2(running)]", "b@5:web/0#3", "b"},
		{"relayed newer entry during a join is merged, not passed on",
			wireState{From: "c", Nodes: []wireNodeState{nodeB(5, 3, entry("web", 0, 3, "exited"))}}, true,
			"a@1:1[web/9#1(running)] b@5:3[web/0#3(exited) web/1#2(running)]", "", "b"},
		{"authoritative state replaces the entry set",
			wireState{From: "b", Nodes: []wireNodeState{nodeB(5, 4, entry("web", 0, 3, "exited"))}}, false,
			"a@1:1[web/9#1(running)] b@5:4[web/0#3(exited)]", "b@5:web/0#3", "b"},
		{"authoritative state during a join is still passed on",
			wireState{From: "b", Nodes: []wireNodeState{nodeB(5, 4, entry("web", 0, 3, "exited"))}}, true,
			"a@1:1[web/9#1(running)] b@5:4[web/0#3(exited)]", "b@5:web/0#3", "b"},
		{"authoritative state at a lower seq merges entry by entry",
			wireState{From: "b", Nodes: []wireNodeState{nodeB(5, 1, entry("web", 0, 1, "running"))}}, false,
			"a@1:1[web/9#1(running)] b@5:2[web/0#1(running) web/1#2(running)]", "", ""},
		{"authoritative state equal to ours changes nothing",
			wireState{From: "b", Nodes: []wireNodeState{nodeB(5, 2, entry("web", 0, 1, "running"), entry("web", 1, 2, "running"))}}, false,
			"a@1:1[web/9#1(running)] b@5:2[web/0#1(running) web/1#2(running)]", "", ""},
		{"relayed older epoch ignored",
			wireState{From: "c", Nodes: []wireNodeState{nodeB(4, 9, entry("old", 0, 9, "running"))}}, false,
			"a@1:1[web/9#1(running)] b@5:2[web/0#1(running) web/1#2(running)]", "", ""},
		{"relayed newer epoch replaces and is passed on",
			wireState{From: "c", Nodes: []wireNodeState{nodeB(7, 1, entry("new", 0, 1, "running"))}}, false,
			"a@1:1[web/9#1(running)] b@7:1[new/0#1(running)]", "b@7:new/0#1", "b"},
		{"relayed newer epoch during a join replaces, not passed on",
			wireState{From: "c", Nodes: []wireNodeState{nodeB(7, 1, entry("new", 0, 1, "running"))}}, true,
			"a@1:1[web/9#1(running)] b@7:1[new/0#1(running)]", "", "b"},
		{"authoritative newer epoch during a join is passed on",
			wireState{From: "b", Nodes: []wireNodeState{nodeB(7, 1, entry("new", 0, 1, "running"))}}, true,
			"a@1:1[web/9#1(running)] b@7:1[new/0#1(running)]", "b@7:new/0#1", "b"},
		{"tombstone in a relayed state",
			wireState{From: "c", Nodes: []wireNodeState{nodeB(5, 3, tomb("web", 1, 3))}}, false,
			"a@1:1[web/9#1(running)] b@5:3[web/0#1(running) web/1#3(x)]", "b@5:web/1#3", "b"},
		{"our own entries from someone else are ignored",
			wireState{From: "c", Nodes: []wireNodeState{{Node: "a", Epoch: 1, Seq: 9, Entries: []wireReplica{entry("x", 0, 9, "running")}}}}, false,
			"a@1:1[web/9#1(running)] b@5:2[web/0#1(running) web/1#2(running)]", "", ""},
		{"a newer epoch of ours moves ours past it and re-announces",
			wireState{From: "c", Nodes: []wireNodeState{{Node: "a", Epoch: 500, Seq: 1}}}, false,
			"a@501:1[web/9#1(running)] b@5:2[web/0#1(running) web/1#2(running)]", "a@501:web/9#1", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newReplicaState("a", 1)
			s.setLocal([]wireReplica{entry("web", 9, 0, "running")}, t0)
			s.applyUpdate(wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 0, 1, "running")}, t0)
			s.applyUpdate(wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 1, 2, "running")}, t0)
			res := s.mergeState(c.ws, c.join, t0)
			if got := stateOf(s); got != c.want {
				t.Errorf("state\n got %s\nwant %s", got, c.want)
			}
			if got := sendsOf(res.send); got != c.send {
				t.Errorf("send %q, want %q", got, c.send)
			}
			var changed []string
			for n := range res.changed {
				changed = append(changed, n)
			}
			sort.Strings(changed)
			if got := strings.Join(changed, " "); got != c.changed {
				t.Errorf("changed %q, want %q", got, c.changed)
			}
		})
	}
}

func TestReplicaStateSetLocal(t *testing.T) {
	s := newReplicaState("a", 1)
	steps := []struct {
		name string
		ws   []wireReplica
		sent string
		want string
	}{
		{"first", []wireReplica{entry("web", 0, 0, "running"), entry("web", 1, 0, "running")},
			"a@0:web/0#1 a@0:web/1#2", "a@1:2[web/0#1(running) web/1#2(running)]"},
		{"UpdatedAt and Seq alone are no change", []wireReplica{
			{Seq: 77, UpdatedAt: 5, Service: "web", Index: 0, State: "running"}, entry("web", 1, 0, "running")},
			"", "a@1:2[web/0#1(running) web/1#2(running)]"},
		{"a change is numbered next, an absent replica becomes a tombstone", []wireReplica{entry("web", 0, 0, "exited")},
			"a@0:web/0#3 a@0:web/1#4", "a@1:4[web/0#3(exited) web/1#4(x)]"},
		{"a tombstone is not buried twice", []wireReplica{entry("web", 0, 0, "exited")},
			"", "a@1:4[web/0#3(exited) web/1#4(x)]"},
		{"a replica comes back over its tombstone; a duplicate key keeps the first", []wireReplica{
			entry("web", 0, 0, "exited"), entry("web", 1, 0, "pending"), entry("web", 1, 0, "running")},
			"a@0:web/1#5", "a@1:5[web/0#3(exited) web/1#5(pending)]"},
	}
	for _, st := range steps {
		var sent []wireUpdate
		for _, w := range s.setLocal(st.ws, t0) {
			sent = append(sent, wireUpdate{Node: "a", Entry: w})
		}
		if got := sendsOf(sent); got != st.sent {
			t.Fatalf("%s: sent %q, want %q", st.name, got, st.sent)
		}
		if got := stateOf(s); got != st.want {
			t.Fatalf("%s: state\n got %s\nwant %s", st.name, got, st.want)
		}
	}
	if len(s.local().deleted) != 0 {
		t.Fatalf("tombstone of a replica that came back is still kept: %v", s.local().deleted)
	}
}

func TestReplicaStateTombstonesAndForget(t *testing.T) {
	s := newReplicaState("a", 1)
	s.setLocal([]wireReplica{entry("web", 0, 0, "running")}, t0)
	s.setLocal(nil, t0)                                                                         // web/0 → tombstone at t0
	s.applyUpdate(wireUpdate{Node: "b", Epoch: 1, Entry: tomb("x", 0, 1)}, t0.Add(time.Minute)) // at t0+1m
	s.collectTombstones(t0)                                                                     // nothing before t0
	if got := stateOf(s); got != "a@1:2[web/0#2(x)] b@1:1[x/0#1(x)]" {
		t.Fatalf("collected too early: %s", got)
	}
	s.collectTombstones(t0.Add(time.Second))
	if got := stateOf(s); got != "a@1:2[] b@1:1[x/0#1(x)]" {
		t.Fatalf("after the first cutoff: %s", got)
	}
	s.collectTombstones(t0.Add(2 * time.Minute))
	if got := stateOf(s); got != "a@1:2[] b@1:1[]" {
		t.Fatalf("after the second cutoff: %s", got)
	}
	s.forget("a")
	s.forget("b")
	if got := stateOf(s); got != "a@1:2[]" {
		t.Fatalf("after forget: %s", got)
	}
}

func TestReplicaStateDigestAndBehind(t *testing.T) {
	ours := newReplicaState("a", 1)
	ours.applyUpdate(wireUpdate{Node: "b", Epoch: 5, Entry: entry("web", 0, 1, "running")}, t0)
	theirs := newNodeState(5)
	theirs.put(rkey{"web", 0}, entry("web", 0, 1, "running"), t0)
	same := theirs.digest()

	moreSeq := newNodeState(5)
	moreSeq.put(rkey{"web", 0}, entry("web", 0, 1, "running"), t0)
	moreSeq.put(rkey{"web", 1}, entry("web", 1, 2, "running"), t0)

	otherHash := newNodeState(5)
	otherHash.put(rkey{"db", 0}, entry("db", 0, 1, "running"), t0)

	cases := []struct {
		name string
		node string
		d    digest
		want bool
	}{
		{"same state", "b", same, false},
		{"no digest announced", "b", digest{}, false},
		{"unknown node", "c", same, true},
		{"newer epoch", "b", digest{Epoch: 6, Seq: 1, Hash: same.Hash}, true},
		{"older epoch", "b", digest{Epoch: 4, Seq: 9}, false},
		{"higher seq", "b", moreSeq.digest(), true},
		{"lower seq", "b", digest{Epoch: 5, Seq: 0, Hash: 1}, false},
		{"same seq, other entries", "b", otherHash.digest(), true},
	}
	for _, c := range cases {
		if got := ours.behind(c.node, c.d); got != c.want {
			t.Errorf("%s: behind = %v, want %v", c.name, got, c.want)
		}
	}
	if theirs.digest().Hash == otherHash.digest().Hash {
		t.Fatal("different entries hash the same")
	}
	tombstoned := newNodeState(5)
	tombstoned.put(rkey{"web", 0}, entry("web", 0, 1, "running"), t0)
	tombstoned.put(rkey{"gone", 0}, tomb("gone", 0, 1), t0)
	if tombstoned.digest().Hash != same.Hash {
		t.Fatal("a tombstone changed the digest's hash")
	}
}

func TestReplicaStateFullStateOrder(t *testing.T) {
	s := newReplicaState("b", 2)
	s.setLocal([]wireReplica{entry("z", 0, 0, "running"), entry("a", 0, 0, "running")}, t0)
	s.applyUpdate(wireUpdate{Node: "c", Epoch: 1, Entry: entry("web", 1, 9, "running")}, t0)
	s.applyUpdate(wireUpdate{Node: "a", Epoch: 1, Entry: entry("web", 0, 3, "running")}, t0)
	all, self := s.fullState()
	if all.From != "b" || len(all.Nodes) != 3 || all.Nodes[0].Node != "a" || all.Nodes[1].Node != "b" || all.Nodes[2].Node != "c" {
		t.Fatalf("nodes not sorted by name: %+v", all)
	}
	if self.Node != "b" || self.Epoch != 2 || self.Seq != 2 || len(self.Entries) != 2 ||
		self.Entries[0].Seq != 1 || self.Entries[1].Seq != 2 {
		t.Fatalf("own part: %+v", self)
	}
}

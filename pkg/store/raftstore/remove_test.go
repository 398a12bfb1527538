package raftstore

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
	pb "go.etcd.io/raft/v3/raftpb"
)

// aliveRunning is RemoveOptions.Alive as gossip would answer it: the running members.
func (c *cluster) aliveRunning(name string) bool {
	for _, i := range c.running() {
		if c.nodes[i].name == name {
			return true
		}
	}
	return false
}

// A voter lost for good (its disk with it) is removed, and a replacement with the same name and
// a fresh data dir joins and becomes a voter: the cluster is back to three voters.
func TestReplaceLostVoter(t *testing.T) {
	const peerTimeout = 500 * time.Millisecond
	c := newCluster(t, 3, func(cfg *Config) { cfg.PeerTimeout = peerTimeout })
	lead := c.leader()
	lost, live := (lead+1)%3, (lead+2)%3
	lostID, liveID := c.store(lost).ID(), c.store(live).ID()
	ask := c.store(lead)
	waitFor(t, 10*time.Second, "the other members heard on the transport", func() bool {
		return time.Since(ask.tr.lastHeard(lostID)) < peerTimeout && time.Since(ask.tr.lastHeard(liveID)) < peerTimeout
	})
	c.stop(lost)
	// A member the transport heard from within PeerTimeout still counts as alive.
	time.Sleep(2 * peerTimeout)
	opts := RemoveOptions{Alive: c.aliveRunning}

	refusals := []struct {
		name  string
		force bool
		want  string
	}{
		{c.nodes[live].name, false, "alive"},
		{c.nodes[live].name, true, "would leave 2 voters with 1 alive"},
		{c.nodes[lead].name, true, "answering this request"},
	}
	for _, r := range refusals {
		o := opts
		o.Force = r.force
		err := ask.RemoveMember(tctx(t, 5*time.Second), r.name, o)
		if !errors.Is(err, ErrRemoveRefused) || !strings.Contains(err.Error(), r.want) {
			t.Fatalf("remove %s (force %v): err = %v, want a refusal saying %q", r.name, r.force, err, r.want)
		}
	}
	if err := ask.RemoveMember(tctx(t, 5*time.Second), "nope", opts); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("remove of an unknown member: err = %v, want ErrNotFound", err)
	}

	if err := ask.RemoveMember(tctx(t, 10*time.Second), c.nodes[lost].name, opts); err != nil {
		t.Fatalf("remove the lost voter: %v", err)
	}
	c.waitMembers(2)
	if _, err := ask.Create(tctx(t, 10*time.Second), storetest.Service("after-remove", nil)); err != nil {
		t.Fatalf("write after removing the lost voter: %v", err)
	}

	// The replacement: same name, new data dir.
	c.nodes[lost].dir = filepath.Join(t.TempDir(), "replacement")
	c.start(lost, []string{c.nodes[lead].api.URL})
	c.waitVoters(3)
	if r := c.store(lost).Role(); r == v1.RaftLearner || r == v1.RaftNone {
		t.Fatalf("replacement's role %s, want a voter", r)
	}
	if _, err := c.store(lost).Get(tctx(t, 10*time.Second), v1.KindService, "after-remove"); err != nil {
		t.Fatalf("replacement reads: %v", err)
	}
	// Three voters again: the cluster survives losing any one of them.
	c.stop(live)
	if _, err := c.store(lost).Create(tctx(t, 20*time.Second), storetest.Service("after-replace", nil)); err != nil {
		t.Fatalf("write with one of the three voters down: %v", err)
	}
}

// waitMembers waits until every running member lists n members.
func (c *cluster) waitMembers(n int) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, i := range c.running() {
			if len(c.store(i).Members()) != n {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("members did not reach %d within 20s", n)
}

func TestCheckRemoval(t *testing.T) {
	conf := func(voters, learners []uint64) *pb.ConfState {
		return &pb.ConfState{Voters: voters, Learners: learners}
	}
	aliveSet := func(ids ...uint64) livenessCheck {
		f := func(id uint64) bool { return slices.Contains(ids, id) }
		return livenessCheck{any: f, sure: f}
	}
	// Gossip saw 3 leave (a graceful stop) while raft still has it as recently active.
	leaving := livenessCheck{
		any:  func(id uint64) bool { return id <= 3 },
		sure: func(id uint64) bool { return id <= 2 },
	}
	tests := []struct {
		name  string
		conf  *pb.ConfState
		id    uint64
		alive livenessCheck
		force bool
		want  string // "" for allowed
	}{
		{"dead voter of three", conf([]uint64{1, 2, 3}, nil), 3, aliveSet(1, 2), false, ""},
		{"dead learner", conf([]uint64{1}, []uint64{2}), 2, aliveSet(1), false, ""},
		{"live learner needs force", conf([]uint64{1}, []uint64{2}), 2, aliveSet(1, 2), false, "alive"},
		{"live learner forced", conf([]uint64{1}, []uint64{2}), 2, aliveSet(1, 2), true, ""},
		{"live voter forced, others alive", conf([]uint64{1, 2, 3}, nil), 3, aliveSet(1, 2, 3), true, ""},
		{"self", conf([]uint64{1, 2, 3}, nil), 1, aliveSet(1, 2, 3), true, "answering"},
		{"only voter", conf([]uint64{2}, []uint64{1}), 2, aliveSet(1), false, "only voter"},
		{"two of three dead: cannot commit", conf([]uint64{1, 2, 3}, nil), 3, aliveSet(1), false, "only 1 of 3 voters are alive"},
		{"live voter while another is dead", conf([]uint64{1, 2, 3}, nil), 2, aliveSet(1, 2), true, "would leave 2 voters with 1 alive"},
		{"dead voter of four with another dead", conf([]uint64{1, 2, 3, 4}, nil), 4, aliveSet(1, 2), false, "only 2 of 4 voters are alive"},
		{"dead voter of five, two dead", conf([]uint64{1, 2, 3, 4, 5}, nil), 5, aliveSet(1, 2, 3), false, ""},
		{"live voter while another is leaving", conf([]uint64{1, 2, 3}, nil), 2, leaving, true, "would leave 2 voters with 1 alive"},
		{"leaving voter needs force", conf([]uint64{1, 2, 3}, nil), 3, leaving, false, "alive"},
		{"joint config", &pb.ConfState{Voters: []uint64{1, 2, 3}, VotersOutgoing: []uint64{1, 2}}, 3, aliveSet(1, 2), false, "in progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason := checkRemoval(tt.conf, tt.id, 1, tt.alive, tt.force)
			switch {
			case tt.want == "" && reason != "":
				t.Fatalf("refused: %s", reason)
			case tt.want != "" && !strings.Contains(reason, tt.want):
				t.Fatalf("reason %q, want a refusal saying %q", reason, tt.want)
			}
		})
	}
}

// A 3-voter cluster loses a voter for good and gains a replacement under another name before
// anyone removes the dead one: the leader swaps the silent voter for the caught-up learner
// after DeadVoterTimeout, so the cluster has three live voters again (growing to five would
// need two learners).
func TestSilentVoterReplacedByLearner(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.DeadVoterTimeout = 500 * time.Millisecond })
	lead := c.leader()
	lost := (lead + 1) % 3
	lostID := c.store(lost).ID()
	c.stop(lost)
	c.add()
	c.start(3, []string{c.nodes[lead].api.URL})
	waitFor(t, 20*time.Second, "the replacement to become a voter", func() bool {
		r := c.store(3).Role()
		return r == v1.RaftFollower || r == v1.RaftLeader
	})
	c.waitVoters(3)
	c.store(lead).mu.Lock()
	conf := c.store(lead).conf
	c.store(lead).mu.Unlock()
	if slices.Contains(conf.GetVoters(), lostID) || !slices.Contains(conf.GetLearners(), lostID) {
		t.Fatalf("conf %v: the silent voter %x should be a learner now", conf, lostID)
	}
	// Three live voters: the cluster survives losing one more.
	c.stop((lead + 2) % 3)
	if _, err := c.store(3).Create(tctx(t, 20*time.Second), storetest.Service("after", nil)); err != nil {
		t.Fatalf("write with one of the three live voters down: %v", err)
	}
}

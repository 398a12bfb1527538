package raftstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/constellation-sh/constellation/pkg/store"
)

// membershipLoop runs on every node and acts while it leads: learners that caught up are
// promoted so that the cluster has an odd number of voters, at most cfg.MaxVoters.
func (s *Store) membershipLoop() {
	t := time.NewTicker(s.cfg.PromoteInterval)
	defer t.Stop()
	silent := map[uint64]time.Time{} // voter → when the leader first found it not recently active
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		st := s.node.Status()
		now := s.cfg.Now()
		trackSilent(silent, st, now)
		changes, what := s.planVoters(st, func(id uint64) bool {
			since, ok := silent[id]
			return ok && now.Sub(since) >= s.cfg.DeadVoterTimeout
		})
		if len(changes) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*s.cfg.PromoteInterval)
		_, err := s.proposeConfChange(ctx, what, changes, nil)
		cancel()
		if err != nil && !errors.Is(err, store.ErrClosed) {
			s.log.Warn("voter change failed", "change", what, "err", err)
		} else if err == nil {
			s.log.Info("voters changed", "change", what)
		}
	}
}

// trackSilent records, while this node leads, since when each voter has not been recently
// active (raft's CheckQuorum mark); it forgets voters that answer again, and everything when
// this node does not lead (its view would be stale).
func trackSilent(silent map[uint64]time.Time, st raft.Status, now time.Time) {
	if st.RaftState != raft.StateLeader {
		clear(silent)
		return
	}
	for id := range silent {
		if _, voter := st.Config.Voters[0][id]; !voter {
			delete(silent, id)
		}
	}
	for id := range st.Config.Voters[0] {
		pr, ok := st.Progress[id]
		switch {
		case id == st.ID || (ok && pr.RecentActive):
			delete(silent, id)
		case silent[id].IsZero():
			silent[id] = now
		}
	}
}

// planVoters decides voter changes, as the leader: learners whose log is within a few entries
// of the leader's and that answered recently are promoted, one when voters are even, two when
// odd, up to cfg.MaxVoters; with an odd number of voters, a voter that has been silent for
// DeadVoterTimeout (dead says which) is swapped for a ready learner; with an even number of
// voters and no learner to promote, the voter furthest behind is demoted (two voters only add
// a way to lose quorum).
func (s *Store) planVoters(st raft.Status, dead func(id uint64) bool) ([]*pb.ConfChangeSingle, string) {
	if st.RaftState != raft.StateLeader || len(st.Config.Voters[1]) > 0 || st.HardState == nil {
		return nil, ""
	}
	voters := len(st.Config.Voters[0])
	var ready []uint64
	for id := range st.Config.Learners {
		pr, ok := st.Progress[id]
		if ok && pr.RecentActive && pr.Match+64 >= st.HardState.GetCommit() {
			ready = append(ready, id)
		}
	}
	slices.Sort(ready)
	need := 2
	if voters%2 == 0 {
		need = 1
	}
	if voters+need <= s.cfg.MaxVoters && len(ready) >= need {
		var out []*pb.ConfChangeSingle
		for _, id := range ready[:need] {
			out = append(out, change(pb.ConfChangeType_ConfChangeAddNode, id))
		}
		return out, fmt.Sprintf("promote %x", ready[:need])
	}
	if voters%2 == 1 && len(ready) > 0 {
		// Growing needs two learners; one is enough to put a live member in a dead voter's
		// place (a 3-voter cluster that lost one and got a replacement would otherwise stay
		// one failure from losing quorum until the dead one is removed).
		ids := slices.Sorted(maps.Keys(st.Config.Voters[0]))
		for _, id := range ids {
			if id != st.ID && dead(id) {
				return []*pb.ConfChangeSingle{
					change(pb.ConfChangeType_ConfChangeAddNode, ready[0]),
					change(pb.ConfChangeType_ConfChangeAddLearnerNode, id),
				}, fmt.Sprintf("replace silent voter %x with %x", id, ready[0])
			}
		}
	}
	if voters%2 == 1 || voters < 2 {
		return nil, ""
	}
	var victim uint64
	var victimMatch uint64
	for id := range st.Config.Voters[0] {
		if id == st.ID {
			continue
		}
		if pr := st.Progress[id]; victim == 0 || pr.Match < victimMatch || (pr.Match == victimMatch && id < victim) {
			victim, victimMatch = id, pr.Match
		}
	}
	if victim == 0 {
		return nil, ""
	}
	return []*pb.ConfChangeSingle{change(pb.ConfChangeType_ConfChangeAddLearnerNode, victim)}, fmt.Sprintf("demote %x", victim)
}

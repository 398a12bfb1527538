package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// JoinRequest is what a new node sends to POST /cluster/join.
type JoinRequest struct {
	// Name is the new node's name (unique in the cluster).
	Name string `json:"name"`
	// RaftAddress is the address its peer transport is reachable at.
	RaftAddress string `json:"raftAddress"`
}

// JoinResponse is what it gets back: enough to start its raft member.
type JoinResponse struct {
	ClusterID string `json:"clusterID"`
	// ID is the raft id assigned to the new node.
	ID uint64 `json:"id"`
	// Members are the cluster's members, the new node included.
	Members []Member `json:"members"`
	// Extra carries what the agent adds (Config.JoinExtra): gossip key and addresses.
	Extra map[string]string `json:"extra,omitempty"`
}

// MemberStatus is a member and its role, for `ctl get nodes`.
type MemberStatus struct {
	Member
	Role v1.RaftRole `json:"role"`
}

// ccContext rides in a conf change: who proposed it and the members it adds.
type ccContext struct {
	ReqID uint64   `json:"reqID,omitempty"`
	Add   []Member `json:"add,omitempty"`
}

func decodeCCContext(b []byte) (ccContext, error) {
	var c ccContext
	if len(b) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("raftstore: decode conf change context: %w", err)
	}
	for _, m := range c.Add {
		if m.ID == 0 || m.Name == "" {
			return c, errors.New("raftstore: decode conf change context: member without id or name")
		}
	}
	return c, nil
}

// memberChange is an applied conf change, to publish after its transaction commits.
type memberChange struct {
	reqID   uint64
	conf    *pb.ConfState
	added   *Member
	removed []uint64
	members map[uint64]Member
}

// applyConfChange applies a committed conf change inside the apply transaction.
func (s *Store) applyConfChange(tx *bolt.Tx, e *pb.Entry) (memberChange, error) {
	var cc pb.ConfChangeI
	var ctxBytes []byte
	if e.GetType() == pb.EntryConfChange {
		c := &pb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), c); err != nil {
			return memberChange{}, fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err)
		}
		cc, ctxBytes = c, c.GetContext()
	} else {
		c := &pb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), c); err != nil {
			return memberChange{}, fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err)
		}
		cc, ctxBytes = c, c.GetContext()
	}
	cctx, err := decodeCCContext(ctxBytes)
	if err != nil {
		s.log.Error("conf change context ignored", "index", e.GetIndex(), "err", err)
	}
	mb := tx.Bucket(bucketMembers)
	mc := memberChange{reqID: cctx.ReqID}
	for _, m := range cctx.Add {
		b, _ := json.Marshal(m)
		if err := mb.Put(u64(m.ID), b); err != nil {
			return mc, err
		}
		mc.added = &m
	}
	for _, ch := range cc.AsV2().GetChanges() {
		if ch.GetType() == pb.ConfChangeType_ConfChangeRemoveNode {
			if err := mb.Delete(u64(ch.GetNodeId())); err != nil {
				return mc, err
			}
			mc.removed = append(mc.removed, ch.GetNodeId())
		}
	}
	mc.conf = s.node.ApplyConfChange(cc)
	if mc.added != nil {
		s.snapshotForNewcomer(e.GetIndex()) // newcomer.go
	}
	mc.members = map[uint64]Member{}
	err = mb.ForEach(func(_, v []byte) error {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		mc.members[m.ID] = m
		return nil
	})
	return mc, err
}

// publishMemberChange updates the transport and the members view after a conf change.
func (s *Store) publishMemberChange(mc memberChange) {
	for id, m := range mc.members {
		if id != s.id {
			s.tr.setPeer(id, m.RaftAddress)
		}
	}
	for _, id := range mc.removed {
		if id == s.id {
			s.log.Warn("this node was removed from the cluster")
			continue
		}
		s.tr.removePeer(id)
	}
	s.mu.Lock()
	s.members = mc.members
	s.mu.Unlock()
	s.log.Info("membership changed", "voters", mc.conf.GetVoters(), "learners", mc.conf.GetLearners())
}

// proposeConfChange proposes cc with a request id in its context and waits for it to apply.
func (s *Store) proposeConfChange(ctx context.Context, what string, changes []*pb.ConfChangeSingle, add []Member) (applyResult, error) {
	reqID := s.nextReqID()
	cctx, _ := json.Marshal(ccContext{ReqID: reqID, Add: add})
	cc := &pb.ConfChangeV2{Changes: changes, Context: cctx}
	if len(changes) > 1 {
		t := pb.ConfChangeTransition_ConfChangeTransitionJointImplicit
		cc.Transition = &t
	}
	return s.proposeAndWait(ctx, reqID, what, func(ctx context.Context) error { return s.node.ProposeConfChange(ctx, cc) })
}

func change(t pb.ConfChangeType, id uint64) *pb.ConfChangeSingle {
	return &pb.ConfChangeSingle{Type: &t, NodeId: &id}
}

// AddLearner adds a node as a learner (what JoinHandler does) and returns its member record.
// A name already in the cluster returns the existing member: joins are idempotent.
func (s *Store) AddLearner(ctx context.Context, req JoinRequest) (Member, error) {
	if req.Name == "" || req.RaftAddress == "" {
		return Member{}, errors.New("raftstore: join: name and raft address are required")
	}
	if m, ok := s.memberByName(req.Name); ok {
		if m.RaftAddress != req.RaftAddress {
			return Member{}, fmt.Errorf("raftstore: join: %q is already a member at %s: %w", req.Name, m.RaftAddress, store.ErrAlreadyExists)
		}
		s.mu.Lock()
		role := s.roleLocked(m.ID)
		s.mu.Unlock()
		if role != v1.RaftLearner {
			// A voter that asks to join again has lost its state: letting it back with its
			// old id would let it vote with a forgotten log.
			return Member{}, fmt.Errorf("raftstore: join: %q is a voter already; remove it before it joins again: %w", req.Name, store.ErrAlreadyExists)
		}
		return m, nil
	}
	m := Member{ID: randomID(), Name: req.Name, RaftAddress: req.RaftAddress}
	_, err := s.proposeConfChange(ctx, "add learner "+req.Name,
		[]*pb.ConfChangeSingle{change(pb.ConfChangeType_ConfChangeAddLearnerNode, m.ID)}, []Member{m})
	if err != nil {
		return Member{}, err
	}
	return m, nil
}

// ErrRemoveRefused is what a *RemoveRefusedError matches with errors.Is.
var ErrRemoveRefused = errors.New("raftstore: removal refused")

// RemoveRefusedError is RemoveMember's refusal: removing the member would break quorum, or is
// otherwise unsafe. Reason is one line for the operator.
type RemoveRefusedError struct {
	Name   string
	Reason string
}

func (e *RemoveRefusedError) Error() string {
	return fmt.Sprintf("raftstore: remove %s: refused: %s", e.Name, e.Reason)
}

// Is makes errors.Is(err, ErrRemoveRefused) hold.
func (e *RemoveRefusedError) Is(target error) bool { return target == ErrRemoveRefused }

// RemoveOptions are what RemoveMember checks against.
type RemoveOptions struct {
	// Alive reports whether a member is known to be alive (the agent asks gossip). This node,
	// and a member the raft transport heard from within PeerTimeout, count as alive whatever it
	// says (for the quorum counts, both must agree).
	Alive func(name string) bool
	// Force removes a member that Alive says is alive. It never overrides the quorum checks: a
	// change that cannot commit, or that leaves a voter set without a live majority, is refused.
	Force bool
}

// RemoveMember removes the named member after checking that the cluster survives it: the
// member is not this node, not the last voter, not alive (unless Force), and both the voters
// before the change (which must commit it) and those after keep a live majority. A refusal
// wraps ErrRemoveRefused with a one-line reason; an unknown name is store.ErrNotFound.
func (s *Store) RemoveMember(ctx context.Context, name string, opts RemoveOptions) error {
	s.mu.Lock()
	var target Member
	found := false
	names := map[uint64]string{}
	for id, m := range s.members {
		names[id] = m.Name
		if m.Name == name {
			target, found = m, true
		}
	}
	conf := &pb.ConfState{
		Voters: slices.Clone(s.conf.GetVoters()), VotersOutgoing: slices.Clone(s.conf.GetVotersOutgoing()),
		LearnersNext: slices.Clone(s.conf.GetLearnersNext()),
	}
	self := s.id
	s.mu.Unlock()
	if !found {
		return fmt.Errorf("raftstore: remove %q: not a member: %w", name, store.ErrNotFound)
	}
	// Two signals, each used in the direction that refuses more: gossip, and the raft transport
	// (a member whose stream to this one carried a frame or a keepalive within PeerTimeout).
	// The target counts as alive if either says so; another voter counts toward a quorum only
	// if both do. A graceful stop leaves gossip at once while the transport heard the member a
	// moment ago, and counting it then would let a second removal break quorum.
	heard := func(id uint64) bool {
		at := s.tr.lastHeard(id)
		return !at.IsZero() && time.Since(at) < s.cfg.PeerTimeout
	}
	gossip := func(id uint64) bool { return opts.Alive != nil && opts.Alive(names[id]) }
	alive := livenessCheck{
		any:  func(id uint64) bool { return id == self || gossip(id) || heard(id) },
		sure: func(id uint64) bool { return id == self || (gossip(id) && heard(id)) },
	}
	if reason := checkRemoval(conf, target.ID, self, alive, opts.Force); reason != "" {
		return &RemoveRefusedError{Name: name, Reason: reason}
	}
	return s.Remove(ctx, name)
}

// livenessCheck answers "is this member alive" two ways: any (some signal says so) and sure
// (every signal says so).
type livenessCheck struct {
	any, sure func(id uint64) bool
}

// checkRemoval decides whether removing id from conf is safe: it returns the reason to refuse
// it, or "". Whether the target is alive is alive.any (refuse a live one); the quorum counts
// use alive.sure (count only members known to be alive).
func checkRemoval(conf *pb.ConfState, id, self uint64, alive livenessCheck, force bool) string {
	refuse := fmt.Sprintf
	if id == self {
		return refuse("it is the member answering this request; send it to another member (--server)")
	}
	if len(conf.GetVotersOutgoing()) > 0 || len(conf.GetLearnersNext()) > 0 {
		return refuse("a membership change is in progress; try again in a few seconds")
	}
	if alive.any(id) && !force {
		return refuse("the node is alive (gossip or raft heard from it recently); stop it first, or use --force to remove a live member")
	}
	voters := conf.GetVoters()
	if !slices.Contains(voters, id) {
		return "" // a learner: quorum does not depend on it
	}
	if len(voters) == 1 {
		return refuse("it is the only voter: the cluster would have no store left")
	}
	live, liveAfter := 0, 0
	for _, v := range voters {
		if alive.sure(v) {
			live++
			if v != id {
				liveAfter++
			}
		}
	}
	// The change commits under the current voters, then the remaining ones must elect and commit.
	if q := len(voters)/2 + 1; live < q {
		return refuse("only %d of %d voters are alive, below the quorum of %d that must commit the change", live, len(voters), q)
	}
	after := len(voters) - 1
	if q := after/2 + 1; liveAfter < q {
		return refuse("it would leave %d voters with %d alive, below their quorum of %d", after, liveAfter, q)
	}
	return ""
}

// Remove takes the named member out of the cluster without the checks of RemoveMember.
// Removing a voter may leave an even number of voters until a learner can be promoted.
func (s *Store) Remove(ctx context.Context, name string) error {
	m, ok := s.memberByName(name)
	if !ok {
		return fmt.Errorf("raftstore: remove %q: %w", name, store.ErrNotFound)
	}
	_, err := s.proposeConfChange(ctx, "remove "+name, []*pb.ConfChangeSingle{change(pb.ConfChangeType_ConfChangeRemoveNode, m.ID)}, nil)
	return err
}

func (s *Store) memberByName(name string) (Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// Members returns the cluster's members with their roles, sorted by name, as this node last
// applied them.
func (s *Store) Members() []MemberStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MemberStatus, 0, len(s.members))
	for id, m := range s.members {
		out = append(out, MemberStatus{Member: m, Role: s.roleLocked(id)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Leader returns the member this node believes leads, if any.
func (s *Store) Leader() (Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.members[s.lead]
	return m, ok && s.lead != 0
}

// Role returns this node's raft role.
func (s *Store) Role() v1.RaftRole {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roleLocked(s.id)
}

func (s *Store) roleLocked(id uint64) v1.RaftRole {
	if s.closed {
		if id == s.id {
			return v1.RaftNone
		}
	}
	switch {
	case s.conf == nil:
		return v1.RaftNone
	case id == s.lead && s.lead != 0:
		return v1.RaftLeader
	case slices.Contains(s.conf.GetLearners(), id) || slices.Contains(s.conf.GetLearnersNext(), id):
		return v1.RaftLearner
	case slices.Contains(s.conf.GetVoters(), id) || slices.Contains(s.conf.GetVotersOutgoing(), id):
		return v1.RaftFollower
	}
	return v1.RaftNone
}

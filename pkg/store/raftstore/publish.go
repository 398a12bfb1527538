package raftstore

import (
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// publishRaft hands a batch to raft's storage (entries, snapshot, hard state) once its
// entries are durable, and moves the loop's view of the applied state.
func (s *Store) publishRaft(rd raft.Ready, b *batch) error {
	if b.snap != nil {
		if err := s.ms.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("raftstore: apply snapshot to storage: %w", err)
		}
		s.installSnapshot(rd.Snapshot, b.snap)
	}
	if err := s.ms.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftstore: append to storage: %w", err)
	}
	if s.hard != nil {
		if err := s.ms.SetHardState(s.hard); err != nil {
			return fmt.Errorf("raftstore: hard state to storage: %w", err)
		}
	}
	s.loopApplied, s.loopRev, s.loopConfState = b.applied, b.rev, b.conf
	if b.snapAt > 0 {
		if _, err := s.ms.CreateSnapshot(b.snapAt, b.conf, b.snapData); err != nil {
			return fmt.Errorf("raftstore: snapshot at %d: %w", b.snapAt, err)
		}
		s.lastSnap = b.snapAt
		if b.compact > 0 {
			if err := s.ms.Compact(b.compact); err != nil {
				return fmt.Errorf("raftstore: compact log to %d: %w", b.compact, err)
			}
			s.compactIndex = b.compact
		}
		s.met.snapshotsTaken.Inc()
		s.log.Debug("snapshot taken", "index", b.snapAt, "compactedTo", b.compact, "bytes", len(b.snapData))
	}
	s.met.appliedEntries.Add(float64(len(rd.CommittedEntries)))
	return nil
}

// publishApplied makes committed batches visible to watches and reads, in order.
func (s *Store) publishApplied() {
	for _, b := range s.pending {
		for _, ev := range b.events {
			s.history.Append(ev)
		}
		for _, mc := range b.confs {
			s.publishMemberChange(mc)
		}
		s.mu.Lock()
		s.revision = b.rev
		s.conf = b.conf
		if b.applied != s.applied {
			s.setAppliedLocked(b.applied)
		}
		s.mu.Unlock()
	}
	s.pending = s.pending[:0]
}

// installSnapshot publishes a snapshot received from the leader, already on disk.
func (s *Store) installSnapshot(snap *pb.Snapshot, sd *snapshotData) {
	md := snap.GetMetadata()
	s.lastSnap, s.compactIndex = md.GetIndex(), md.GetIndex()
	members := map[uint64]Member{}
	for _, m := range sd.Members {
		members[m.ID] = m
		if m.ID != s.id {
			s.tr.setPeer(m.ID, m.RaftAddress)
		}
	}
	s.history.SetCurrent(sd.Revision)
	s.mu.Lock()
	if sd.ClusterID != "" {
		s.clusterID = sd.ClusterID
	}
	s.members, s.conf = members, md.GetConfState()
	s.revision = sd.Revision
	s.setAppliedLocked(md.GetIndex())
	s.mu.Unlock()
	s.met.snapshotsReceived.Inc()
	s.log.Info("installed snapshot from leader", "index", md.GetIndex(), "revision", sd.Revision, "objects", len(sd.Objects))
}

func (s *Store) setAppliedLocked(i uint64) {
	s.applied = i
	close(s.appliedC)
	s.appliedC = make(chan struct{})
	s.met.appliedIndex.Set(float64(i))
}

package raftstore

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/constellation-sh/constellation/pkg/store"
)

// run is the raft loop: the only goroutine that touches the raft.Node's Ready/Advance, the
// log, and the applied state.
func (s *Store) run() {
	defer close(s.done)
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	fail := func(err error) {
		s.log.Error("raft loop stopped: close and reopen the store to recover", "err", err)
		s.mu.Lock()
		s.failed = err
		s.mu.Unlock()
		if s.tx != nil {
			_ = s.tx.Rollback()
			s.tx = nil
		}
		close(s.failedC)
	}
	for {
		select {
		case <-ticker.C:
			s.node.Tick()
		case rd := <-s.node.Ready():
			wasPending := s.tx != nil
			if err := s.handleReady(rd); err != nil {
				fail(err)
				return
			}
			if s.tx != nil && !wasPending {
				flush.Reset(s.cfg.ApplyCommitDelay)
			}
		case <-flush.C:
			if err := s.commitPending(); err != nil {
				fail(err)
				return
			}
		case <-s.flushc:
			if err := s.commitPending(); err != nil {
				fail(err)
				return
			}
		case <-s.stop:
			if err := s.commitPending(); err != nil {
				fail(err)
			}
			return
		}
	}
}

// handleReady processes one Ready in the order of the etcd-io/raft README: (1) persist the
// snapshot, entries and hard state; (2) send messages; (3) apply committed entries; (4)
// Advance. Each Ready costs one fsynced bbolt commit, which is what makes group commit pay:
//
//   - a follower persists and commits, sends (its acknowledgements wait for nothing else),
//     then applies into a transaction that the next Ready's commit carries;
//   - a leader whose term and vote are already on disk sends first, so its fsync overlaps its
//     followers' (raft thesis §10.2.1, allowed by the README), then persists and applies in
//     one transaction, so its proposers hear back before that fsync;
//   - a Ready with nothing to make durable only applies, into the open transaction.
//
// An open transaction is committed by the next Ready that needs durability, after
// ApplyCommitDelay, or at once when a linearizable read waits for what it applied.
func (s *Store) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		s.setSoftState(rd.SoftState)
	}
	msgs := rd.Messages
	if s.loopLeader && !s.voteChanges(rd.HardState) {
		s.send(msgs)
		msgs = nil
	}
	// A leader has sent already: it applies in the transaction that persists, so its
	// proposers hear back before that fsync. A follower persists, sends (its
	// acknowledgements wait for nothing else), then applies.
	b, applied, err := s.persist(rd, msgs == nil)
	if err != nil {
		return err
	}
	s.send(msgs)
	if !applied {
		if err := s.apply(rd, b); err != nil {
			return err
		}
	}
	if err := s.publishRaft(rd, b); err != nil {
		return err
	}
	s.pending = append(s.pending, b)
	if s.tx == nil {
		s.publishApplied()
	}
	s.resolveReads(rd.ReadStates)
	s.node.Advance()
	return nil
}

func (s *Store) setSoftState(ss *raft.SoftState) {
	s.loopLeader = ss.RaftState == raft.StateLeader
	s.mu.Lock()
	changed := s.lead != ss.Lead
	s.lead = ss.Lead
	s.mu.Unlock()
	if changed {
		s.met.leaderChanges.Inc()
		s.log.Info("raft leader", "leader", idString(ss.Lead), "state", ss.RaftState.String())
	}
	if s.loopLeader {
		s.met.isLeader.Set(1)
	} else {
		s.met.isLeader.Set(0)
	}
}

// voteChanges reports whether hs carries a term or vote not yet on disk.
func (s *Store) voteChanges(hs *pb.HardState) bool {
	return hs != nil && (hs.GetTerm() != s.hardTerm || hs.GetVote() != s.hardVote)
}

// outcome is one applied entry's answer to its proposer.
type outcome struct {
	reqID uint64
	res   applyResult
}

// batch is what one Ready's transaction did, to publish once it is durable.
type batch struct {
	snap     *snapshotData
	applied  uint64
	rev      int64
	conf     *pb.ConfState
	events   []store.RawEvent
	outcomes []outcome
	confs    []memberChange
	snapAt   uint64 // a snapshot of the state at this index was serialised
	snapData []byte
	compact  uint64 // log compacted up to here
}

// persist is step 1, with step 3 in the same transaction when applyToo (a leader, or a
// batch with nothing to make durable); it reports whether it applied.
func (s *Store) persist(rd raft.Ready, applyToo bool) (*batch, bool, error) {
	if rd.HardState != nil {
		s.hard = rd.HardState
	}
	hasSnap := rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot)
	b := &batch{applied: s.loopApplied, rev: s.loopRev, conf: s.loopConfState}
	if !hasSnap && len(rd.Entries) == 0 && len(rd.CommittedEntries) == 0 && !s.voteChanges(rd.HardState) {
		// Only the commit index moved: raft can relearn it; it is written with the next
		// batch (it must only never be below the applied index on disk).
		return b, true, nil
	}
	if hasSnap {
		// Batches still waiting for an fsync are published before the snapshot replaces
		// what they applied, so watches see revisions in order.
		if err := s.commitPending(); err != nil {
			return nil, false, err
		}
		var err error
		if b.snap, err = decodeSnapshot(rd.Snapshot.GetData()); err != nil {
			return nil, false, err
		}
		md := rd.Snapshot.GetMetadata()
		b.applied, b.rev, b.conf = md.GetIndex(), b.snap.Revision, md.GetConfState()
	}
	// Apply-only batches (no entries, snapshot or vote to make durable) stay in an open
	// transaction that the next batch needing durability commits, or the loop after
	// ApplyCommitDelay, or at once when a read waits for them: their entries are already
	// durable in the log, so one fsync serves several batches.
	durable := hasSnap || len(rd.Entries) > 0 || s.voteChanges(rd.HardState)
	applyToo = applyToo || !durable
	if err := s.begin(); err != nil {
		return nil, false, err
	}
	var err error
	if applyToo {
		// A leader, or nothing to make durable: persist and apply in one transaction.
		err = s.writePersist(s.tx, rd, b, hasSnap)
		if err == nil {
			err = s.writeApply(s.tx, rd, b)
		}
	} else {
		// A follower, or a leader with a term or vote to make durable before it sends:
		// persist only; it applies after sending (see handleReady).
		err = s.writePersist(s.tx, rd, b, hasSnap)
	}
	if err != nil {
		_ = s.tx.Rollback()
		s.tx = nil
		return nil, false, fmt.Errorf("raftstore: persist: %w", err)
	}
	if durable {
		if err := s.commitTx(); err != nil {
			return nil, false, err
		}
	}
	return b, applyToo, nil
}

// apply is step 3 for a batch persisted without it: into a transaction the next fsync
// carries (see persist).
func (s *Store) apply(rd raft.Ready, b *batch) error {
	if err := s.begin(); err != nil {
		return err
	}
	if err := s.writeApply(s.tx, rd, b); err != nil {
		_ = s.tx.Rollback()
		s.tx = nil
		return fmt.Errorf("raftstore: apply: %w", err)
	}
	return nil
}

// begin opens the loop's write transaction unless one is open.
func (s *Store) begin() error {
	if s.tx != nil {
		return nil
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("raftstore: begin: %w", err)
	}
	s.tx, s.txStart = tx, time.Now()
	return nil
}

// writePersist is step 1 inside tx: snapshot, entries, hard state.
func (s *Store) writePersist(tx *bolt.Tx, rd raft.Ready, b *batch, hasSnap bool) error {
	if hasSnap {
		if err := restoreSnapshot(tx, rd.Snapshot, b.snap); err != nil {
			return fmt.Errorf("restore snapshot: %w", err)
		}
	}
	if err := appendEntries(tx, rd.Entries); err != nil {
		return fmt.Errorf("append entries: %w", err)
	}
	if s.hard != nil {
		return putProto(tx.Bucket(bucketMeta), keyHardState, s.hard)
	}
	return nil
}

// writeApply is step 3 inside tx: committed entries into the object table, with the applied
// index, revision and conf state.
func (s *Store) writeApply(tx *bolt.Tx, rd raft.Ready, b *batch) error {
	if err := s.applyEntries(tx, rd.CommittedEntries, b); err != nil {
		return err
	}
	// The entries are committed (durable on a quorum) and their outcomes are decided: the
	// proposers can have them now, without waiting for this transaction's fsync. Reads that
	// must see them (linearizable ones) wait for the applied index, published after the
	// commit; a crash before it replays the same outcomes from the log.
	s.release(b.outcomes)
	meta := tx.Bucket(bucketMeta)
	if hs := s.hard; hs != nil && hs.GetCommit() < b.applied {
		// Impossible by raft's contract; the restart invariant (commit >= applied on disk)
		// is guarded anyway.
		c := b.applied
		if err := putProto(meta, keyHardState, &pb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: &c}); err != nil {
			return err
		}
	}
	if err := meta.Put(keyApplied, u64(b.applied)); err != nil {
		return err
	}
	if err := meta.Put(keyRevision, u64(uint64(b.rev))); err != nil {
		return err
	}
	if len(b.confs) > 0 {
		if err := putProto(meta, keyConfState, b.conf); err != nil {
			return err
		}
	}
	return s.maybeSnapshot(tx, b, rd.Entries)
}

// commitTx commits (and fsyncs) the open transaction.
func (s *Store) commitTx() error {
	tx := s.tx
	s.tx = nil
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("raftstore: commit: %w", err)
	}
	s.met.commitSeconds.Observe(time.Since(s.txStart).Seconds())
	if s.hard != nil {
		s.hardTerm, s.hardVote = s.hard.GetTerm(), s.hard.GetVote()
	}
	return nil
}

// commitPending commits an open apply-only transaction and publishes what it applied.
func (s *Store) commitPending() error {
	if s.tx == nil {
		return nil
	}
	if err := s.commitTx(); err != nil {
		return err
	}
	s.publishApplied()
	return nil
}

// applyEntries runs committed entries through store.Apply into the object table.
func (s *Store) applyEntries(tx *bolt.Tx, ents []*pb.Entry, b *batch) error {
	table := boltTable{tx.Bucket(bucketObjects)}
	for _, e := range ents {
		if e.GetIndex() <= b.applied {
			continue
		}
		b.applied = e.GetIndex()
		switch e.GetType() {
		case pb.EntryNormal:
			if len(e.GetData()) == 0 {
				continue // a new leader's empty entry
			}
			reqID, mut, err := decodeProposal(e.GetData())
			if err != nil {
				// Every replica fails the same way on the same bytes: skipped everywhere.
				s.log.Error("undecodable entry skipped", "index", e.GetIndex(), "err", err)
				continue
			}
			res, err := store.Apply(table, b.rev+1, mut)
			var te *tableError
			if errors.As(err, &te) {
				return err
			}
			if err == nil && res.Event != nil {
				b.rev++
				b.events = append(b.events, *res.Event)
			}
			b.outcomes = append(b.outcomes, outcome{reqID, applyResult{object: res.Object, err: err}})
		case pb.EntryConfChange, pb.EntryConfChangeV2:
			mc, err := s.applyConfChange(tx, e)
			if err != nil {
				return err
			}
			b.conf = mc.conf
			b.confs = append(b.confs, mc)
			if mc.reqID != 0 {
				b.outcomes = append(b.outcomes, outcome{mc.reqID, applyResult{member: mc.added}})
			}
		}
	}
	return nil
}

// maybeSnapshot serialises the applied state every cfg.SnapshotEntries entries and compacts
// the log, keeping cfg.CatchUpEntries behind for followers that lag a little.
func (s *Store) maybeSnapshot(tx *bolt.Tx, b *batch, ents []*pb.Entry) error {
	if b.snap != nil || b.applied-s.lastSnap < s.cfg.SnapshotEntries {
		return nil
	}
	var err error
	if b.snapData, err = encodeSnapshot(tx, s.ClusterID()); err != nil {
		return err
	}
	b.snapAt = b.applied
	if b.applied <= s.cfg.CatchUpEntries || b.applied-s.cfg.CatchUpEntries <= s.compactIndex {
		return nil
	}
	compact := b.applied - s.cfg.CatchUpEntries
	term, err := s.termOf(compact, ents)
	if err != nil {
		return fmt.Errorf("term of %d: %w", compact, err)
	}
	if err := compactLog(tx, compact); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyCompactIndex, u64(compact)); err != nil {
		return err
	}
	if err := meta.Put(keyCompactTerm, u64(term)); err != nil {
		return err
	}
	b.compact = compact
	return nil
}

// termOf is the term of entry i, from this Ready's entries or the storage.
func (s *Store) termOf(i uint64, ents []*pb.Entry) (uint64, error) {
	if len(ents) > 0 && ents[0].GetIndex() <= i && i <= ents[len(ents)-1].GetIndex() {
		return ents[i-ents[0].GetIndex()].GetTerm(), nil
	}
	return s.ms.Term(i)
}

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

// send is step 2. Messages are marshalled here, in the loop, as the README asks.
func (s *Store) send(msgs []*pb.Message) {
	for _, m := range msgs {
		s.tr.send(m)
	}
}

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
// Advance. Entries and hard state go to the write-ahead log, one fdatasync per Ready that has
// any to make durable; the applied objects go into a bbolt transaction that stays open across
// Readys and is committed in batches (see commitPending):
//
//   - a leader whose term and vote are already on disk sends first, so its fsync overlaps its
//     followers' (raft thesis §10.2.1, allowed by the README);
//   - a follower sends its acknowledgements once its fsync returned;
//   - both apply the committed entries while the fsync runs, releasing each outcome to its
//     proposer at once (the entry is committed: durable on a quorum); Advance waits for both.
func (s *Store) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		s.setSoftState(rd.SoftState)
	}
	msgs := rd.Messages
	if s.loopLeader && !s.voteChanges(rd.HardState) {
		s.send(msgs)
		msgs = nil
	}
	if rd.HardState != nil {
		s.hard = rd.HardState
	}
	b := &batch{applied: s.loopApplied, rev: s.loopRev, conf: s.loopConfState}
	hasSnap := rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot)
	if hasSnap {
		if err := s.persistSnapshot(rd, b); err != nil {
			return err
		}
	}
	needSync, err := s.writeLog(rd)
	if err != nil {
		return err
	}
	// The fdatasync runs on its own goroutine, followed by the messages that must wait for
	// it (a follower's acknowledgements, a vote), while the loop applies what is committed
	// (durable on a quorum already): apply's CPU overlaps the disk, and the proposers get
	// their answers meanwhile. Nothing else touches the WAL until it is done.
	var synced chan error
	if needSync || msgs != nil {
		synced = make(chan error, 1)
		go func() {
			if needSync {
				if err := s.syncLog(); err != nil {
					synced <- err
					return
				}
			}
			s.send(msgs)
			synced <- nil
		}()
	}
	aerr := s.apply(rd, b)
	if synced != nil {
		if err := <-synced; err != nil {
			return err
		}
	}
	if aerr != nil {
		return aerr
	}
	if needSync && s.hard != nil {
		s.hardTerm, s.hardVote = s.hard.GetTerm(), s.hard.GetVote()
	}
	if err := s.publishRaft(rd, b); err != nil {
		return err
	}
	s.pending = append(s.pending, b)
	if s.tx == nil {
		s.publishApplied()
	} else if s.txEntries >= maxTxEntries || len(b.confs) > 0 {
		// A full batch, or a membership change (published with its commit: the membership
		// loop and joiners wait for it) is committed now.
		if err := s.commitPending(); err != nil {
			return err
		}
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

// maxTxEntries is how many applied entries the open bbolt transaction takes before it is
// committed without waiting for ApplyCommitDelay.
const maxTxEntries = 4096

// writeLog writes the Ready's entries and hard state to the write-ahead log, and reports
// whether they must be synced before messages go out or the Ready is acknowledged: new
// entries, a new term or vote. A hard state whose commit index alone moved is written and left
// for the next sync (raft relearns it; recovery never puts it below the applied index).
func (s *Store) writeLog(rd raft.Ready) (bool, error) {
	if len(rd.Entries) == 0 && rd.HardState == nil {
		return false, nil
	}
	if err := s.wal.Save(rd.HardState, rd.Entries); err != nil {
		return false, fmt.Errorf("raftstore: persist: %w", err)
	}
	return len(rd.Entries) > 0 || s.voteChanges(rd.HardState), nil
}

// syncLog is the one fdatasync of a Ready. It may run on its own goroutine while the loop
// applies: nothing else touches the WAL until it returns.
func (s *Store) syncLog() error {
	t0 := time.Now()
	if err := s.wal.Sync(); err != nil {
		return fmt.Errorf("raftstore: persist: %w", err)
	}
	s.met.walSyncSeconds.Observe(time.Since(t0).Seconds())
	return nil
}

// persistSnapshot installs a snapshot received from the leader: the applied state is replaced
// in one fsynced bbolt transaction, then the write-ahead log is reset at the snapshot (a
// record of it, synced, and the older segments released).
func (s *Store) persistSnapshot(rd raft.Ready, b *batch) error {
	// Batches still waiting for a commit are published before the snapshot replaces what they
	// applied, so watches see revisions in order.
	if err := s.commitPending(); err != nil {
		return err
	}
	var err error
	if b.snap, err = decodeSnapshot(rd.Snapshot.GetData()); err != nil {
		return err
	}
	md := rd.Snapshot.GetMetadata()
	b.applied, b.rev, b.conf = md.GetIndex(), b.snap.Revision, md.GetConfState()
	if err := s.begin(); err != nil {
		return err
	}
	if err := restoreSnapshot(s.tx, rd.Snapshot, b.snap); err != nil {
		_ = s.tx.Rollback()
		s.tx = nil
		return fmt.Errorf("raftstore: restore snapshot: %w", err)
	}
	if err := s.commitTx(); err != nil {
		return err
	}
	if err := s.wal.SaveSnapshot(s.hard, md.GetIndex(), md.GetTerm()); err != nil {
		return fmt.Errorf("raftstore: persist snapshot: %w", err)
	}
	return nil
}

// apply is step 3: committed entries into the open bbolt transaction.
func (s *Store) apply(rd raft.Ready, b *batch) error {
	if len(rd.CommittedEntries) == 0 {
		return nil
	}
	if err := s.begin(); err != nil {
		return err
	}
	if err := s.writeApply(s.tx, rd, b); err != nil {
		_ = s.tx.Rollback()
		s.tx = nil
		return fmt.Errorf("raftstore: apply: %w", err)
	}
	s.txEntries += len(rd.CommittedEntries)
	s.mu.Lock()
	s.appliedTx = b.applied
	s.mu.Unlock()
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
	s.tx, s.txStart, s.txEntries = tx, time.Now(), 0
	return nil
}

// writeApply is step 3 inside tx: committed entries into the object table, with the applied
// index, revision and conf state.
func (s *Store) writeApply(tx *bolt.Tx, rd raft.Ready, b *batch) error {
	if err := s.applyEntries(tx, rd.CommittedEntries, b); err != nil {
		return err
	}
	// Watches get the events now, with the proposers (the entries are committed), not when
	// the batch's bbolt transaction commits; reads of the objects (Get, List) see them after
	// that commit, which a linearizable read asks for at once. A List's revision is the one
	// committed with what it read, so a watch from it replays these events.
	for _, ev := range b.events {
		s.history.Append(ev)
	}
	b.events = nil
	// The entries are committed (durable on a quorum) and their outcomes are decided: the
	// proposers can have them now, without waiting for this transaction's fsync. Reads that
	// must see them (linearizable ones) wait for the applied index, published after the
	// commit; a crash before it replays the same outcomes from the log.
	s.release(b.outcomes)
	meta := tx.Bucket(bucketMeta)
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

// commitTx commits (and fsyncs) the open transaction, then releases the write-ahead log's
// segments that the compaction it carried made useless.
func (s *Store) commitTx() error {
	tx := s.tx
	s.tx = nil
	t0 := time.Now()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("raftstore: commit: %w", err)
	}
	s.met.commitSeconds.Observe(time.Since(t0).Seconds())
	if s.txCompact > 0 {
		if err := s.wal.ReleaseTo(s.txCompact); err != nil {
			return fmt.Errorf("raftstore: release log: %w", err)
		}
		s.txCompact = 0
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
			res, err := s.applier.Apply(table, b.rev+1, mut)
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
	// The WAL's segments below it are released once this transaction is committed.
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyCompactIndex, u64(compact)); err != nil {
		return err
	}
	if err := meta.Put(keyCompactTerm, u64(term)); err != nil {
		return err
	}
	b.compact = compact
	s.txCompact = compact
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

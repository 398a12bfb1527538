package raftstore

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/constellation-sh/constellation/pkg/store"
)

// outcome is one applied entry's answer to its proposer.
type outcome struct {
	reqID uint64
	res   applyResult
}

// batch is what one apply job did in the open transaction, to publish once it is committed.
type batch struct {
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

// applyJob is work for the apply goroutine, in the raft loop's order: a snapshot received
// from the leader to install, or committed entries to apply. done, if not nil, is closed
// once the job is done and committed (a snapshot, a membership change).
type applyJob struct {
	snap *pb.Snapshot
	sd   *snapshotData
	ents []*pb.Entry
	done chan struct{}
}

// applyQueue is how many jobs the raft loop may hand over before it waits for the apply
// goroutine (backpressure: a slow disk under bbolt slows the loop down, not the memory).
const applyQueue = 256

// applyLoop is the apply goroutine: it owns the bbolt write transaction and the applied state
// (loopApplied, loopRev, loopConfState, lastSnap, compactIndex, applier, tx, pending). It
// applies committed entries into the open transaction, releasing outcomes and events at once,
// and commits it in batches: after ApplyCommitDelay, at maxTxEntries entries, at a
// membership change, or at once when a read waits for the applied index (flushc). The raft
// loop goes on persisting, sending and advancing meanwhile: the write-ahead log is the
// durability point, and recovery replays it from the applied index the last commit recorded.
// It returns when the raft loop closes applyc (committing what it applied, unless the store
// failed: then it rolls back, as the loop's failure leaves it) or on its own failure.
func (s *Store) applyLoop() {
	defer close(s.applyDone)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	fail := func(err error) {
		s.rollback()
		s.fail(err)
	}
	for {
		select {
		case j, ok := <-s.applyc:
			if !ok {
				if s.Err() != nil {
					s.rollback()
				} else if err := s.commitPending(); err != nil {
					fail(err)
				}
				return
			}
			wasPending := s.tx != nil
			if err := s.doApply(j); err != nil {
				fail(err)
				return
			}
			if j.done != nil {
				close(j.done)
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
		}
	}
}

func (s *Store) rollback() {
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.tx = nil
	}
}

// toApplier hands committed entries to the apply goroutine. applied is not nil when the
// entries hold a membership change: the raft loop waits for it before Advance.
func (s *Store) toApplier(ents []*pb.Entry) (applied <-chan struct{}, err error) {
	j := applyJob{ents: ents}
	for _, e := range ents {
		if t := e.GetType(); t == pb.EntryConfChange || t == pb.EntryConfChangeV2 {
			j.done = make(chan struct{})
			break
		}
	}
	if err := s.sendApplier(j); err != nil {
		return nil, err
	}
	return j.done, nil
}

// sendApplier queues a job, unless the apply goroutine stopped.
func (s *Store) sendApplier(j applyJob) error {
	select {
	case s.applyc <- j:
		return nil
	case <-s.applyDone:
		return s.applierStopped()
	}
}

// waitApplier waits for a job's done, unless the apply goroutine stopped.
func (s *Store) waitApplier(done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-s.applyDone:
		return s.applierStopped()
	}
}

func (s *Store) applierStopped() error {
	if err := s.Err(); err != nil {
		return err
	}
	return errors.New("raftstore: the apply goroutine stopped")
}

// doApply is one job on the apply goroutine.
func (s *Store) doApply(j applyJob) error {
	if j.snap != nil {
		return s.installSnapshotState(j.snap, j.sd)
	}
	b := &batch{applied: s.loopApplied, rev: s.loopRev, conf: s.loopConfState}
	if err := s.apply(j.ents, b); err != nil {
		return err
	}
	if err := s.advanceApplied(b, len(j.ents)); err != nil {
		return err
	}
	s.pending = append(s.pending, b)
	if s.txEntries >= maxTxEntries || len(b.confs) > 0 {
		// A full batch, or a membership change (published with its commit: the membership
		// loop and joiners wait for it) is committed now.
		return s.commitPending()
	}
	return nil
}

// installSnapshotState replaces the applied state with a snapshot received from the leader,
// in one fsynced bbolt transaction, once what was applied before is committed and published
// (so watches see revisions in order).
func (s *Store) installSnapshotState(snap *pb.Snapshot, sd *snapshotData) error {
	if err := s.commitPending(); err != nil {
		return err
	}
	if err := s.begin(); err != nil {
		return err
	}
	if err := restoreSnapshot(s.tx, snap, sd); err != nil {
		s.rollback()
		return fmt.Errorf("raftstore: restore snapshot: %w", err)
	}
	if err := s.commitTx(); err != nil {
		return err
	}
	md := snap.GetMetadata()
	s.loopApplied, s.loopRev, s.loopConfState = md.GetIndex(), sd.Revision, md.GetConfState()
	s.installSnapshot(snap, sd)
	return nil
}

// apply is step 3: committed entries into the open bbolt transaction.
func (s *Store) apply(ents []*pb.Entry, b *batch) error {
	if err := s.begin(); err != nil {
		return err
	}
	if err := s.writeApply(s.tx, ents, b); err != nil {
		s.rollback()
		return fmt.Errorf("raftstore: apply: %w", err)
	}
	s.txEntries += len(ents)
	return nil
}

// begin opens the apply goroutine's write transaction unless one is open.
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
func (s *Store) writeApply(tx *bolt.Tx, ents []*pb.Entry, b *batch) error {
	if err := s.applyEntries(tx, ents, b); err != nil {
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
	// A stale read that follows an outcome waits for at least this batch's commit (read
	// your writes): the index moves before the proposers learn their outcomes.
	s.mu.Lock()
	s.appliedTx = b.applied
	s.mu.Unlock()
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
	return s.maybeSnapshot(tx, b, ents)
}

// commitTx commits (and fsyncs) the open transaction, then asks for the write-ahead log's
// segments that the compaction it carried made useless to be released.
func (s *Store) commitTx() error {
	tx := s.tx
	s.tx = nil
	t0 := time.Now()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("raftstore: commit: %w", err)
	}
	s.met.commitSeconds.Observe(time.Since(t0).Seconds())
	if s.txCompact > 0 {
		// The raft loop, which owns the WAL, releases it before its next Ready.
		s.releaseTo.Store(s.txCompact)
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
	if b.applied-s.lastSnap < s.cfg.SnapshotEntries {
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

// termOf is the term of entry i, from the entries being applied or the storage.
func (s *Store) termOf(i uint64, ents []*pb.Entry) (uint64, error) {
	if len(ents) > 0 && ents[0].GetIndex() <= i && i <= ents[len(ents)-1].GetIndex() {
		return ents[i-ents[0].GetIndex()].GetTerm(), nil
	}
	return s.ms.Term(i)
}

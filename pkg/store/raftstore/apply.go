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
	// First the applied index Stale reads wait for, then the events and outcomes: a watcher or
	// a proposer that reads back what it was just told about must wait for this batch.
	s.mu.Lock()
	s.appliedTx = b.applied
	s.mu.Unlock()
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

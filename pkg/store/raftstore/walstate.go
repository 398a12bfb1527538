package raftstore

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/constellation-sh/constellation/pkg/store/raftstore/wal"
)

// formatWAL is the log format of a data dir whose raft log and hard state are in the
// write-ahead log (<dataDir>/wal), with bbolt keeping the applied state only.
const formatWAL = "wal1"

// formatGuard is the hard state left in bbolt's meta bucket by this format. The version before
// the write-ahead log read its hard state there: with this commit index, far beyond any log,
// raft refuses to restart ("state.commit ... is out of range") instead of that version taking
// the empty log bucket for a new node. Downgrading a data dir is not supported.
var formatGuard = func() *pb.HardState {
	c := uint64(1) << 62
	return &pb.HardState{Commit: &c}
}()

func walDir(dataDir string) string { return filepath.Join(dataDir, "wal") }

// openLog opens the write-ahead log of the data dir, converting a data dir written before it
// (raft log and hard state in bbolt) once, and fills d's hard state and entries from it.
func openLog(dataDir string, db *bolt.DB, d *diskState, logger *slog.Logger, segmentSize int64) (*wal.WAL, error) {
	dir := walDir(dataDir)
	if d.logFormat != formatWAL {
		if d.logFormat != "" {
			return nil, fmt.Errorf("raftstore: %s: unknown log format %q (written by a newer version?)", dataDir, d.logFormat)
		}
		if err := convertToWAL(dir, db, d, logger, segmentSize); err != nil {
			return nil, err
		}
	}
	w, st, err := wal.Open(dir, wal.Options{SegmentSize: segmentSize, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open write-ahead log: %w", err)
	}
	if err := d.fromWAL(st); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("raftstore: %s: %w", dir, err)
	}
	return w, nil
}

// fromWAL takes the hard state and the entries after the compaction point from what the WAL
// read back, checked against the applied state in bbolt.
func (d *diskState) fromWAL(st *wal.State) error {
	d.hard = st.HardState
	if st.Snapshot.Index > d.compactIndex {
		return fmt.Errorf("write-ahead log reset at snapshot %d, beyond the applied state's %d", st.Snapshot.Index, d.compactIndex)
	}
	ents := st.Entries
	// A snapshot from the leader is committed to bbolt before its record reaches the WAL: a
	// crash in between leaves the entries of the log it replaced, which disagree with it at
	// its index. They go, as raft dropped them.
	for i, e := range ents {
		if e.GetIndex() == d.compactIndex && e.GetTerm() != d.compactTerm && d.compactIndex > 0 {
			ents = ents[:i]
			break
		}
	}
	for len(ents) > 0 && ents[0].GetIndex() <= d.compactIndex {
		ents = ents[1:]
	}
	if len(ents) > 0 && ents[0].GetIndex() != d.compactIndex+1 {
		return fmt.Errorf("the log starts at entry %d, but the applied state is compacted to %d only: entries are missing", ents[0].GetIndex(), d.compactIndex)
	}
	last := d.compactIndex
	if len(ents) > 0 {
		last = ents[len(ents)-1].GetIndex()
	}
	if d.applied > last {
		return fmt.Errorf("the applied state is at %d but the log ends at %d: entries are missing", d.applied, last)
	}
	d.entries = ents
	// The commit index is written without an fsync of its own (raft relearns it); the applied
	// state is only ever committed entries, so the commit index is at least the applied one.
	if d.hard != nil && d.hard.GetCommit() < d.applied {
		c := d.applied
		d.hard = &pb.HardState{Term: d.hard.Term, Vote: d.hard.Vote, Commit: &c}
	}
	if d.hard == nil && d.applied > 0 {
		var zero uint64
		c := d.applied
		d.hard = &pb.HardState{Term: &zero, Vote: &zero, Commit: &c}
	}
	return nil
}

// convertToWAL moves the raft log and hard state of a data dir written before the
// write-ahead log into a new WAL, then empties the log bucket and records the format in the
// same bbolt transaction. A WAL left by a conversion that did not finish is started over.
func convertToWAL(dir string, db *bolt.DB, d *diskState, logger *slog.Logger, segmentSize int64) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("raftstore: convert to the write-ahead log: %w", err)
	}
	old := d.hard != nil || len(d.entries) > 0
	if old {
		w, _, err := wal.Open(dir, wal.Options{SegmentSize: segmentSize, Logger: logger})
		if err != nil {
			return fmt.Errorf("raftstore: convert to the write-ahead log: %w", err)
		}
		err = w.Save(d.hard, d.entries)
		if err == nil {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("raftstore: convert to the write-ahead log: %w", err)
		}
	}
	err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketLog); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketLog); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := putProto(meta, keyHardState, formatGuard); err != nil {
			return err
		}
		return meta.Put(keyLogFormat, []byte(formatWAL))
	})
	if err != nil {
		return fmt.Errorf("raftstore: convert to the write-ahead log: %w", err)
	}
	if old {
		first, last := uint64(0), uint64(0)
		if n := len(d.entries); n > 0 {
			first, last = d.entries[0].GetIndex(), d.entries[n-1].GetIndex()
		}
		logger.Info("converted the raft log from raft.db to the write-ahead log (once; older versions cannot open this data dir)",
			"dir", dir, "entries", len(d.entries), "first", first, "last", last, "commit", d.hard.GetCommit())
	}
	return nil
}

package raftstore

// snapshotForNewcomer makes the raft loop serialise a snapshot with the batch that applies the
// conf change at index, when the log is compacted (a seeded cluster's always is: it starts
// from a snapshot at seedIndex). A member added by that change has no log: it can only start
// from a snapshot, and raft refuses one whose ConfState does not name it ("attempted to
// restore snapshot but it is not in the ConfState"). Without this, the leader would keep
// sending the snapshot it took before the member was added until SnapshotEntries more entries
// were applied: a member joining a quiet cluster whose log was compacted would wait for
// hours.
//
// It moves lastSnap so that maybeSnapshot's "applied - lastSnap >= SnapshotEntries" holds for
// every batch that applies index (modular arithmetic, as the loop's uint64 subtraction); the
// snapshot taken sets lastSnap back. Called by applyConfChange, on the raft loop goroutine
// that owns lastSnap.
func (s *Store) snapshotForNewcomer(index uint64) {
	if s.compactIndex == 0 {
		return // the whole log is there: the newcomer is sent entries, not a snapshot
	}
	s.lastSnap = index - s.cfg.SnapshotEntries
}

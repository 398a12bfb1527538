package raftstore

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// run is the raft loop: the only goroutine that touches the raft.Node's Ready/Advance, the
// write-ahead log and raft's storage (MemoryStorage, which the apply goroutine only
// snapshots and compacts). It hands committed entries to the apply goroutine (applyLoop),
// which owns the bbolt transaction: a bbolt commit never holds up a Ready.
func (s *Store) run() {
	go s.applyLoop()
	defer func() {
		// The apply goroutine commits what it applied (unless a failure stopped the store)
		// before the store counts as stopped.
		close(s.applyc)
		<-s.applyDone
		close(s.done)
	}()
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			s.node.Tick()
		case rd := <-s.node.Ready():
			if err := s.handleReady(rd); err != nil {
				s.fail(err)
				return
			}
		case <-s.applyDone:
			return // the apply goroutine stopped on a failure, which it recorded
		case <-s.stop:
			return
		}
	}
}

// fail records the failure that stopped the raft loop or the apply goroutine; the first one
// is the store's Err.
func (s *Store) fail(err error) {
	s.mu.Lock()
	first := s.failed == nil
	if first {
		s.failed = err
	}
	s.mu.Unlock()
	if first {
		s.log.Error("raft loop stopped: close and reopen the store to recover", "err", err)
		close(s.failedC)
	}
}

// handleReady processes one Ready in the order of the etcd-io/raft README: (1) persist the
// snapshot, entries and hard state; (2) send messages; (3) apply committed entries; (4)
// Advance. Entries and hard state go to the write-ahead log, one fdatasync per Ready that has
// any to make durable. Steps 1 and 2 fork on the role (see persistLeader and
// persistFollower). Step 3 is the apply goroutine's: the committed entries go to it as soon
// as they are in raft's storage (a leader's always are, from earlier Readys: they are then
// applied while the fsync runs), else once this Ready's entries are; it releases each
// outcome to its proposer at once (the entry is committed: durable on a quorum) and commits
// the applied objects to bbolt in batches. Advance waits for the fsync, and for the apply of
// a membership change (raft's configuration must have moved before the next Ready, as etcd
// waits for it too).
func (s *Store) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		s.setSoftState(rd.SoftState)
	}
	if err := s.releaseLog(); err != nil {
		return err
	}
	var applied <-chan struct{}
	ents := rd.CommittedEntries
	if len(ents) > 0 && !hasSnapshot(rd) && s.inStorage(ents) {
		var err error
		if applied, err = s.toApplier(ents); err != nil {
			return err
		}
		ents = nil
	}
	var (
		synced   <-chan error
		needSync bool
		err      error
	)
	if s.loopLeader && !s.voteChanges(rd.HardState) {
		synced, needSync, err = s.persistLeader(rd)
	} else {
		synced, needSync, err = s.persistFollower(rd)
	}
	if err != nil {
		return err
	}
	if synced != nil {
		if err := <-synced; err != nil {
			return err
		}
	}
	if needSync && s.hard != nil {
		s.hardTerm, s.hardVote = s.hard.GetTerm(), s.hard.GetVote()
	}
	if err := s.publishRaft(rd); err != nil {
		return err
	}
	if len(ents) > 0 {
		if applied, err = s.toApplier(ents); err != nil {
			return err
		}
	}
	if applied != nil {
		if err := s.waitApplier(applied); err != nil {
			return err
		}
	}
	s.resolveReads(rd.ReadStates)
	s.node.Advance()
	return nil
}

// persistLeader is steps 1 and 2 for a leader whose term and vote are already on disk: it
// sends first, so that its fsync overlaps its followers' (raft thesis §10.2.1, allowed by
// the README), then writes the log and starts the fsync. synced reports the fsync's end.
func (s *Store) persistLeader(rd raft.Ready) (synced <-chan error, needSync bool, err error) {
	s.send(rd.Messages)
	if needSync, err = s.persist(rd); err != nil {
		return nil, false, err
	}
	return s.syncThenSend(needSync, nil), needSync, nil
}

// persistFollower is steps 1 and 2 for a follower, a candidate, or a leader whose term or vote
// changed: it writes the log and sends its messages (acknowledgements, votes) only once their
// fsync returned. synced reports the end of both.
func (s *Store) persistFollower(rd raft.Ready) (synced <-chan error, needSync bool, err error) {
	if needSync, err = s.persist(rd); err != nil {
		return nil, false, err
	}
	return s.syncThenSend(needSync, rd.Messages), needSync, nil
}

// persist is step 1 without the fsync: a snapshot received from the leader, then the entries
// and hard state written to the log. needSync reports whether they must be synced.
func (s *Store) persist(rd raft.Ready) (needSync bool, err error) {
	if rd.HardState != nil {
		s.hard = rd.HardState
	}
	if hasSnapshot(rd) {
		if err := s.persistSnapshot(rd); err != nil {
			return false, err
		}
	}
	return s.writeLog(rd)
}

// syncThenSend runs the fdatasync on its own goroutine, followed by the messages that must
// wait for it, while the apply goroutine applies what is committed (durable on a quorum
// already). Nothing else touches the WAL until it is done. It returns nil when there is
// neither to do.
func (s *Store) syncThenSend(needSync bool, msgs []*pb.Message) <-chan error {
	if !needSync && msgs == nil {
		return nil
	}
	synced := make(chan error, 1)
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
	return synced
}

func hasSnapshot(rd raft.Ready) bool { return rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) }

// inStorage reports whether committed entries are all in raft's storage already (written and
// synced by an earlier Ready), so the apply goroutine may snapshot and compact up to them.
func (s *Store) inStorage(ents []*pb.Entry) bool {
	last, err := s.ms.LastIndex()
	return err == nil && ents[len(ents)-1].GetIndex() <= last
}

// releaseLog releases the write-ahead log's segments that the apply goroutine's last
// committed compaction made useless (the WAL is the loop's: it asks, the loop does it).
func (s *Store) releaseLog() error {
	if to := s.releaseTo.Swap(0); to > 0 {
		if err := s.wal.ReleaseTo(to); err != nil {
			return fmt.Errorf("raftstore: release log: %w", err)
		}
	}
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

// persistSnapshot installs a snapshot received from the leader: the apply goroutine commits
// what it applied and replaces the applied state with the snapshot in one fsynced bbolt
// transaction, then the write-ahead log is reset at the snapshot (a record of it, synced, and
// the older segments released).
func (s *Store) persistSnapshot(rd raft.Ready) error {
	sd, err := decodeSnapshot(rd.Snapshot.GetData())
	if err != nil {
		return err
	}
	done := make(chan struct{})
	if err := s.sendApplier(applyJob{snap: rd.Snapshot, sd: sd, done: done}); err != nil {
		return err
	}
	if err := s.waitApplier(done); err != nil {
		return err
	}
	md := rd.Snapshot.GetMetadata()
	if err := s.wal.SaveSnapshot(s.hard, md.GetIndex(), md.GetTerm()); err != nil {
		return fmt.Errorf("raftstore: persist snapshot: %w", err)
	}
	return nil
}

// send is step 2. Messages are marshalled here, in the loop, as the README asks.
func (s *Store) send(msgs []*pb.Message) {
	for _, m := range msgs {
		s.tr.send(m)
	}
}

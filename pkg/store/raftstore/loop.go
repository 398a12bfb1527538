package raftstore

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
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
// Readys and is committed in batches (see commitPending). Steps 1 and 2 fork on the role (see
// persistLeader and persistFollower); both then apply the committed entries while the fsync
// runs, releasing each outcome to its proposer at once (the entry is committed: durable on a
// quorum); Advance waits for both.
func (s *Store) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		s.setSoftState(rd.SoftState)
	}
	b := &batch{applied: s.loopApplied, rev: s.loopRev, conf: s.loopConfState}
	var (
		synced   <-chan error
		needSync bool
		err      error
	)
	if s.loopLeader && !s.voteChanges(rd.HardState) {
		synced, needSync, err = s.persistLeader(rd, b)
	} else {
		synced, needSync, err = s.persistFollower(rd, b)
	}
	if err != nil {
		return err
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

// persistLeader is steps 1 and 2 for a leader whose term and vote are already on disk: it
// sends first, so that its fsync overlaps its followers' (raft thesis §10.2.1, allowed by
// the README), then writes the log and starts the fsync. synced reports the fsync's end.
func (s *Store) persistLeader(rd raft.Ready, b *batch) (synced <-chan error, needSync bool, err error) {
	s.send(rd.Messages)
	if needSync, err = s.persist(rd, b); err != nil {
		return nil, false, err
	}
	return s.syncThenSend(needSync, nil), needSync, nil
}

// persistFollower is steps 1 and 2 for a follower, a candidate, or a leader whose term or vote
// changed: it writes the log and sends its messages (acknowledgements, votes) only once their
// fsync returned. synced reports the end of both.
func (s *Store) persistFollower(rd raft.Ready, b *batch) (synced <-chan error, needSync bool, err error) {
	if needSync, err = s.persist(rd, b); err != nil {
		return nil, false, err
	}
	return s.syncThenSend(needSync, rd.Messages), needSync, nil
}

// persist is step 1 without the fsync: a snapshot received from the leader, then the entries
// and hard state written to the log. needSync reports whether they must be synced.
func (s *Store) persist(rd raft.Ready, b *batch) (needSync bool, err error) {
	if rd.HardState != nil {
		s.hard = rd.HardState
	}
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.persistSnapshot(rd, b); err != nil {
			return false, err
		}
	}
	return s.writeLog(rd)
}

// syncThenSend runs the fdatasync on its own goroutine, followed by the messages that must
// wait for it, while the loop applies what is committed (durable on a quorum already): apply's
// CPU overlaps the disk, and the proposers get their answers meanwhile. Nothing else touches
// the WAL until it is done. It returns nil when there is neither to do.
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

// send is step 2. Messages are marshalled here, in the loop, as the README asks.
func (s *Store) send(msgs []*pb.Message) {
	for _, m := range msgs {
		s.tr.send(m)
	}
}

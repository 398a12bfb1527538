package raftstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is one member of the replicated store. It implements store.Store.
type Store struct {
	cfg     Config
	log     *slog.Logger
	db      *bolt.DB
	ms      *raft.MemoryStorage
	node    raft.Node
	id      uint64
	history *store.History
	tr      *transport
	met     *metrics
	reqBase uint64
	reqSeq  atomic.Uint64
	// joinExtra is JoinResponse.Extra from when this node joined (nil if it bootstrapped).
	joinExtra map[string]string

	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the raft loop has returned
	failedC   chan struct{} // closed when the raft loop stopped on a failure
	closeOnce sync.Once

	// Owned by the raft loop goroutine (and Open, before it starts):
	loopLeader    bool
	hard          *pb.HardState // latest hard state raft reported
	hardTerm      uint64        // term and vote last written to disk
	hardVote      uint64
	loopApplied   uint64 // applied index
	loopRev       int64  // revision at loopApplied
	lastSnap      uint64 // index of the newest snapshot in ms
	compactIndex  uint64 // log entries at or below are deleted
	loopConfState *pb.ConfState
	tx            *bolt.Tx // open apply-only transaction, not yet committed
	txStart       time.Time
	pending       []*batch      // batches applied in tx, published when it commits
	flushc        chan struct{} // a read waits for the applied index: commit tx now

	mu sync.Mutex
	// guarded by mu:
	clusterID string
	waiters   map[uint64]chan applyResult
	reads     map[uint64]chan uint64
	applied   uint64
	appliedC  chan struct{} // closed and replaced whenever applied moves
	revision  int64
	lead      uint64
	conf      *pb.ConfState
	members   map[uint64]Member
	closed    bool
	failed    error // a failure that stopped the raft loop
}

var _ store.Store = (*Store)(nil)

// applyResult is what a proposer learns when its entry is applied.
type applyResult struct {
	object []byte
	err    error
	member *Member // conf changes: the member added
}

// Open opens (or creates) this node's store in cfg.DataDir and starts its raft loop and peer
// transport. A node without state bootstraps a one-node cluster, or joins through cfg.Join.
func Open(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "raftstore", "node", cfg.NodeName)
	db, err := openDB(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s, err := open(cfg, logger, reg, db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func open(cfg Config, logger *slog.Logger, reg prometheus.Registerer, db *bolt.DB) (*Store, error) {
	d, err := loadState(db)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:      cfg,
		log:      logger,
		db:       db,
		ms:       raft.NewMemoryStorage(),
		reqBase:  randomID(),
		stop:     make(chan struct{}),
		flushc:   make(chan struct{}, 1),
		failedC:  make(chan struct{}),
		done:     make(chan struct{}),
		waiters:  map[uint64]chan applyResult{},
		reads:    map[uint64]chan uint64{},
		appliedC: make(chan struct{}),
		members:  d.members,
		met:      newMetrics(reg),
	}
	serverTLS, clientTLS, err := cfg.tlsConfigs()
	if err != nil {
		return nil, err
	}
	s.tr, err = newTransport(transportConfig{
		listen: cfg.RaftAddress, token: cfg.ClusterToken, serverTLS: serverTLS, clientTLS: clientTLS,
		clusterID: s.ClusterID, log: logger, met: s.met,
		propTimeout: cfg.TickInterval * time.Duration(cfg.ElectionTicks),
		peerTimeout: cfg.PeerTimeout,
	})
	if err != nil {
		return nil, err
	}
	advertise := advertiseAddress(cfg.AdvertiseRaftAddress, s.tr.addr())
	fail := func(err error) (*Store, error) { s.tr.close(); return nil, err }

	var peers []raft.Peer
	switch {
	case d.initialized() || (d.nodeID != 0 && d.joinPeers != nil):
		s.id, s.clusterID, s.joinExtra = d.nodeID, d.clusterID, d.joinExtra
		for _, m := range d.joinPeers {
			s.tr.setPeer(m.ID, m.RaftAddress)
		}
		logger.Info("restarting raft member", "id", idString(s.id), "applied", d.applied, "revision", d.revision)
	case len(cfg.Join) > 0:
		ctx, cancel := context.WithTimeout(context.Background(), cfg.JoinTimeout)
		resp, err := joinCluster(ctx, cfg.Join, cfg.ClusterToken, JoinRequest{Name: cfg.NodeName, RaftAddress: advertise}, logger)
		cancel()
		if err != nil {
			return fail(err)
		}
		s.id, s.clusterID = resp.ID, resp.ClusterID
		d.joinPeers = resp.Members
		s.joinExtra = resp.Extra
		if err := saveIdentity(db, s.id, s.clusterID, resp.Members, resp.Extra); err != nil {
			return fail(err)
		}
		for _, m := range resp.Members {
			s.tr.setPeer(m.ID, m.RaftAddress)
		}
		logger.Info("joined cluster as a learner", "id", idString(s.id), "cluster", s.clusterID)
	default:
		s.id = d.nodeID
		if s.id == 0 {
			s.id = randomID()
		}
		s.clusterID = d.clusterID
		if s.clusterID == "" {
			s.clusterID = idString(randomID())
		}
		if err := saveIdentity(db, s.id, s.clusterID, nil, nil); err != nil {
			return fail(err)
		}
		ctx, _ := json.Marshal(ccContext{Add: []Member{{ID: s.id, Name: cfg.NodeName, RaftAddress: advertise}}})
		peers = []raft.Peer{{ID: s.id, Context: ctx}}
		logger.Info("bootstrapping a one-node cluster", "id", idString(s.id), "cluster", s.clusterID)
	}

	if err := s.restoreStorage(d); err != nil {
		return fail(err)
	}
	s.history = store.NewHistory(cfg.HistorySize, d.revision)
	for id, m := range s.members {
		if id != s.id {
			s.tr.setPeer(id, m.RaftAddress)
		}
	}
	rc := &raft.Config{
		ID:                        s.id,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   s.ms,
		Applied:                   d.applied,
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  16 << 20,
		MaxUncommittedEntriesSize: 256 << 20,
		MaxInflightMsgs:           512,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{logger},
	}
	if peers != nil {
		s.node = raft.StartNode(rc, peers)
	} else {
		s.node = raft.RestartNode(rc)
	}
	s.tr.start(s.id, s.node)
	go s.run()
	go s.membershipLoop()
	return s, nil
}

// advertiseAddress is the address peers should dial: the configured one, else the bound
// address; in either, an unspecified host ("", 0.0.0.0, ::) is replaced by this host's first
// non-loopback address (a guess: the agent should pass --node.advertiseAddress), and a
// missing or zero port by the bound one.
func advertiseAddress(advertise, bound string) string {
	_, boundPort, _ := net.SplitHostPort(bound)
	a := advertise
	if a == "" {
		a = bound
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if port == "" || port == "0" {
		port = boundPort
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = guessHostIP()
	}
	return net.JoinHostPort(host, port)
}

func guessHostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

func saveIdentity(db *bolt.DB, id uint64, clusterID string, joinPeers []Member, extra map[string]string) error {
	err := db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyNodeID, u64(id)); err != nil {
			return err
		}
		if err := meta.Put(keyClusterID, []byte(clusterID)); err != nil {
			return err
		}
		if joinPeers == nil {
			return nil
		}
		b, _ := json.Marshal(joinPeers)
		if err := meta.Put(keyPeers, b); err != nil {
			return err
		}
		e, _ := json.Marshal(extra)
		return meta.Put(keyJoinExtra, e)
	})
	if err != nil {
		return fmt.Errorf("raftstore: save identity: %w", err)
	}
	return nil
}

// restoreStorage fills the MemoryStorage raft reads from with what the file holds, and makes
// a snapshot of the applied state available for followers that need one.
func (s *Store) restoreStorage(d *diskState) error {
	s.hard = d.hard
	if d.hard != nil {
		s.hardTerm, s.hardVote = d.hard.GetTerm(), d.hard.GetVote()
	}
	s.loopApplied, s.loopRev, s.compactIndex = d.applied, d.revision, d.compactIndex
	s.loopConfState = d.conf
	s.applied, s.revision, s.conf = d.applied, d.revision, d.conf
	var data []byte
	if d.applied > 0 {
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			data, err = encodeSnapshot(tx, d.clusterID)
			return err
		})
		if err != nil {
			return err
		}
	}
	if d.compactIndex > 0 {
		snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: &d.compactIndex, Term: &d.compactTerm, ConfState: d.conf}}
		if d.applied == d.compactIndex {
			snap.Data = data
		}
		if err := s.ms.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("raftstore: restore snapshot: %w", err)
		}
		s.lastSnap = d.compactIndex
	}
	if err := s.ms.Append(d.entries); err != nil {
		return fmt.Errorf("raftstore: restore log: %w", err)
	}
	if d.hard != nil {
		if err := s.ms.SetHardState(d.hard); err != nil {
			return fmt.Errorf("raftstore: restore hard state: %w", err)
		}
	}
	if d.applied > d.compactIndex {
		if _, err := s.ms.CreateSnapshot(d.applied, d.conf, data); err != nil {
			return fmt.Errorf("raftstore: snapshot at %d: %w", d.applied, err)
		}
		s.lastSnap = d.applied
	}
	return nil
}

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
	err := s.writePersist(s.tx, rd, b, hasSnap)
	if err == nil && applyToo {
		err = s.writeApply(s.tx, rd, b)
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

// release hands applied entries' outcomes to the proposers waiting on this member.
func (s *Store) release(outcomes []outcome) {
	if len(outcomes) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range outcomes {
		if ch, ok := s.waiters[o.reqID]; ok {
			ch <- o.res // buffered, one result per request id
			delete(s.waiters, o.reqID)
		}
	}
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

// resolveReads hands ReadIndex answers to the reads waiting for them.
func (s *Store) resolveReads(rs []raft.ReadState) {
	if len(rs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if len(r.RequestCtx) != 8 {
			continue
		}
		id := binary.BigEndian.Uint64(r.RequestCtx)
		if ch, ok := s.reads[id]; ok {
			ch <- r.Index
			delete(s.reads, id)
		}
	}
}

// Proposals are a version byte, the request id and the Mutation's JSON.
const proposalV1 = 1

func encodeProposal(reqID uint64, m store.Mutation) ([]byte, error) {
	b := make([]byte, 9, 9+512)
	b[0] = proposalV1
	binary.BigEndian.PutUint64(b[1:9], reqID)
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("raftstore: encode proposal: %w", err)
	}
	return append(b, j...), nil
}

func decodeProposal(b []byte) (uint64, store.Mutation, error) {
	var m store.Mutation
	if len(b) < 9 || b[0] != proposalV1 {
		return 0, m, errors.New("raftstore: malformed proposal")
	}
	id := binary.BigEndian.Uint64(b[1:9])
	if err := json.Unmarshal(b[9:], &m); err != nil {
		return id, m, fmt.Errorf("raftstore: decode proposal: %w", err)
	}
	return id, m, nil
}

func randomID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

func idString(id uint64) string { return fmt.Sprintf("%016x", id) }

func (s *Store) nextReqID() uint64 { return s.reqBase + s.reqSeq.Add(1) }

// withDeadline applies the default request timeout to a context without a deadline.
func (s *Store) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// unavailable explains why a request did not complete in time.
func (s *Store) unavailable(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("raftstore: %s: %w", what, ctx.Err())
	}
	s.mu.Lock()
	lead := s.lead
	leader := "none"
	if m, ok := s.members[lead]; ok {
		leader = m.Name
	} else if lead != 0 {
		leader = idString(lead)
	}
	s.mu.Unlock()
	return fmt.Errorf("raftstore: %s: no quorum before the deadline (leader: %s): %w (%w)", what, leader, store.ErrUnavailable, ctx.Err())
}

// usable returns ErrClosed or the loop's failure, if any.
func (s *Store) usable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("raftstore: stopped after a failure: %w (%w)", store.ErrUnavailable, s.failed)
	}
	return nil
}

// proposeAndWait proposes data under reqID and waits until this node applies it.
func (s *Store) proposeAndWait(ctx context.Context, reqID uint64, what string, propose func(context.Context) error) (applyResult, error) {
	if err := s.usable(); err != nil {
		return applyResult{}, err
	}
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	ch := make(chan applyResult, 1)
	s.mu.Lock()
	s.waiters[reqID] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, reqID)
		s.mu.Unlock()
	}()
	s.met.proposals.Inc()
	for {
		err := propose(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, raft.ErrStopped) {
			return applyResult{}, store.ErrClosed
		}
		if !errors.Is(err, raft.ErrProposalDropped) {
			if ctx.Err() != nil {
				return applyResult{}, s.unavailable(ctx, what)
			}
			return applyResult{}, fmt.Errorf("raftstore: %s: %w", what, err)
		}
		// Dropped before reaching any log (no leader, or a leadership transfer): safe to
		// propose again.
		select {
		case <-time.After(s.cfg.TickInterval / 2):
		case <-ctx.Done():
			return applyResult{}, s.unavailable(ctx, what)
		case <-s.done:
			return applyResult{}, store.ErrClosed
		}
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return applyResult{}, s.unavailable(ctx, what)
	case <-s.done:
		return applyResult{}, store.ErrClosed
	}
}

func (s *Store) write(ctx context.Context, mut store.Mutation) (v1.Object, error) {
	reqID := s.nextReqID()
	data, err := encodeProposal(reqID, mut)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("%s %s/%s", mut.Op, mut.Kind, mut.Name)
	r, err := s.proposeAndWait(ctx, reqID, what, func(ctx context.Context) error { return s.node.Propose(ctx, data) })
	if err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	return store.DecodeObject(r.object)
}

// WriteMutation proposes a Mutation as it is, as a proposer of another version would have
// logged it (its object may carry fields this version does not know). It implements
// storetest.MutationWriter.
func (s *Store) WriteMutation(ctx context.Context, mut store.Mutation) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.write(ctx, mut)
}

func (s *Store) mutation(ctx context.Context, op store.Op, obj v1.Object) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mut, err := store.NewMutation(op, obj, s.cfg.Now(), store.NewUID())
	if err != nil {
		return nil, err
	}
	return s.write(ctx, mut)
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return s.mutation(ctx, store.OpCreate, obj)
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return s.mutation(ctx, store.OpUpdate, obj)
}

// UpdateStatus implements store.Store.
func (s *Store) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return s.mutation(ctx, store.OpUpdateStatus, obj)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.write(ctx, store.Mutation{Op: store.OpDelete, Kind: kind, Name: name, ResourceVersion: resourceVersion, Now: s.cfg.Now().UTC()})
}

// linearize waits until this node has applied everything committed before the call: a
// ReadIndex round confirms leadership with a quorum, then the local state catches up. Reads
// that follow see every write acknowledged before it started.
func (s *Store) linearize(ctx context.Context) error {
	if err := s.usable(); err != nil {
		return err
	}
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	// A ReadIndex is lost silently when there is no leader or it steps down: ask again
	// after an election timeout.
	retry := s.cfg.TickInterval * time.Duration(s.cfg.ElectionTicks)
	for {
		id := s.nextReqID()
		ch := make(chan uint64, 1)
		s.mu.Lock()
		s.reads[id] = ch
		s.mu.Unlock()
		rctx := u64(id)
		err := s.node.ReadIndex(ctx, rctx)
		if err == nil {
			timer := time.NewTimer(retry)
			select {
			case idx := <-ch:
				timer.Stop()
				return s.waitApplied(ctx, idx)
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
			case <-s.done:
				timer.Stop()
			}
		}
		s.mu.Lock()
		delete(s.reads, id)
		s.mu.Unlock()
		switch {
		case errors.Is(err, raft.ErrStopped):
			return store.ErrClosed
		case ctx.Err() != nil:
			return s.unavailable(ctx, "linearizable read")
		}
		if err := s.usable(); err != nil {
			return err
		}
		if err != nil {
			select {
			case <-time.After(s.cfg.TickInterval):
			case <-ctx.Done():
				return s.unavailable(ctx, "linearizable read")
			}
		}
	}
}

func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	for {
		s.mu.Lock()
		applied, ch, closed := s.applied, s.appliedC, s.closed
		s.mu.Unlock()
		if closed {
			return store.ErrClosed
		}
		if applied >= idx {
			return nil
		}
		select {
		case s.flushc <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s.unavailable(ctx, "linearizable read")
		case <-s.done:
			return store.ErrClosed
		}
	}
}

func (s *Store) read(ctx context.Context, opts []store.ReadOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if store.ApplyReadOptions(opts).Stale {
		return s.usable()
	}
	return s.linearize(ctx)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	if err := s.read(ctx, opts); err != nil {
		return nil, err
	}
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b = bytes.Clone(tx.Bucket(bucketObjects).Get(objectKey(kind, name)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %s/%s: %w", kind, name, err)
	}
	if b == nil {
		return nil, fmt.Errorf("%s: %w", v1.Key{Kind: kind, Name: name}, store.ErrNotFound)
	}
	return store.DecodeObject(b)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	if err := s.read(ctx, opts); err != nil {
		return nil, 0, err
	}
	var (
		out []v1.Object
		rev int64
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		rev = int64(getU64(tx.Bucket(bucketMeta), keyRevision))
		prefix := objectKey(kind, "")
		c := tx.Bucket(bucketObjects).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			o, err := store.DecodeObject(v) // decoding copies out of bbolt's memory
			if err != nil {
				return err
			}
			if sel.Matches(o.GetMetadata().Labels) {
				out = append(out, o)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("raftstore: list %s: %w", kind, err)
	}
	if out == nil {
		out = []v1.Object{}
	}
	store.SortByName(out)
	return out, rev, nil
}

// Watch implements store.Store. Watches are served from this member's history; every member
// applies the same entries at the same revisions, so a watch can resume on another member.
func (s *Store) Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	return s.history.Watch(ctx, kind, fromRev)
}

// Revision implements store.Store: the latest revision, read linearizably.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.read(ctx, nil); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revision, nil
}

// Compact implements store.Store. It forgets this member's watch history; the raft log is
// compacted on its own schedule (Config.SnapshotEntries).
func (s *Store) Compact(_ context.Context, rev int64) error {
	s.history.Compact(rev)
	return nil
}

// Close stops the raft loop and the transport and closes the file. Pending requests fail
// with store.ErrClosed; watches end.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.tr.closeListener()
		close(s.stop)
		<-s.done
		s.node.Stop()
		s.tr.close()
		s.history.Close()
		if e := s.db.Close(); e != nil {
			err = fmt.Errorf("raftstore: close: %w", e)
		}
	})
	return err
}

// Failed returns a channel closed when the raft loop stopped on a storage failure (a full
// disk, an I/O error); Err says why. The member then answers nothing but ErrUnavailable
// until it is closed and opened again on the same data dir: everything acknowledged is on
// disk, and the failed batch was rolled back.
func (s *Store) Failed() <-chan struct{} { return s.failedC }

// Err returns the failure that stopped the raft loop, or nil.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// JoinExtra returns the Extra map of the join response this node received when it joined
// (kept on disk, so it is there after restarts too), or nil for the node that bootstrapped.
func (s *Store) JoinExtra() map[string]string { return maps.Clone(s.joinExtra) }

// ID returns this member's raft id.
func (s *Store) ID() uint64 { return s.id }

// ClusterID returns the cluster's id, chosen when it was bootstrapped.
func (s *Store) ClusterID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusterID
}

// raftLogger routes raft's logging to slog.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)              { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
func (r raftLogger) Panic(v ...any)              { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }

package raftstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/constellation-sh/constellation/pkg/store"
)

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

// applierCache is how many decoded objects the applier keeps (the ones written last).
const applierCache = 4096

func open(cfg Config, logger *slog.Logger, reg prometheus.Registerer, db *bolt.DB) (*Store, error) {
	d, err := loadState(db)
	if err != nil {
		return nil, err
	}
	w, err := openLog(cfg.DataDir, db, d, logger, cfg.WALSegmentSize)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:      cfg,
		log:      logger,
		db:       db,
		wal:      w,
		applier:  store.NewApplier(applierCache),
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
		_ = w.Close()
		return nil, err
	}
	s.tr, err = newTransport(transportConfig{
		listen: cfg.RaftAddress, token: cfg.ClusterToken, serverTLS: serverTLS, clientTLS: clientTLS,
		clusterID: s.ClusterID, log: logger, met: s.met,
		propTimeout: cfg.TickInterval * time.Duration(cfg.ElectionTicks),
		peerTimeout: cfg.PeerTimeout,
	})
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	advertise := advertiseAddress(cfg.AdvertiseRaftAddress, s.tr.addr())
	fail := func(err error) (*Store, error) { s.tr.close(); _ = w.Close(); return nil, err }

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
		resp, err := joinCluster(ctx, cfg.JoinClient, cfg.Join, cfg.ClusterToken, JoinRequest{Name: cfg.NodeName, RaftAddress: advertise}, logger)
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
		if cfg.Seed != nil { // a restore (seed.go): raft restarts from the seeded state
			if err := s.seed(d, cfg.Seed, advertise); err != nil {
				return fail(err)
			}
			logger.Info("seeded a new one-node cluster", "id", idString(s.id), "cluster", s.clusterID,
				"revision", cfg.Seed.Revision, "objects", len(cfg.Seed.Objects), "from", cfg.Seed.Source)
			break
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

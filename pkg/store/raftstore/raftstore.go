package raftstore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore/wal"
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
	wal           *wal.WAL
	applier       *store.Applier // store.Apply with the decoded objects it wrote
	tx            *bolt.Tx       // open apply transaction, not yet committed
	txStart       time.Time
	txEntries     int           // entries applied in tx
	txCompact     uint64        // tx compacts the log to here: release the WAL after its commit
	pending       []*batch      // batches applied in tx, published when it commits
	flushc        chan struct{} // a read waits for the applied index: commit tx now

	mu sync.Mutex
	// guarded by mu:
	clusterID string
	waiters   map[uint64]chan applyResult
	reads     map[uint64]chan uint64
	applied   uint64        // applied and committed to bbolt: what reads see
	appliedTx uint64        // applied, its events published, maybe not committed yet
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

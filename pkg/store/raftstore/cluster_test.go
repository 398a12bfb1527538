package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	pb "go.etcd.io/raft/v3/raftpb"
)

// network decides which links between in-process members are cut. Messages on a cut link
// are dropped by the sender's transport, as a partition would.
type network struct {
	mu sync.Mutex
	// guarded by mu:
	cut map[[2]uint64]bool
}

func (n *network) drop(m *pb.Message) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[[2]uint64{m.GetFrom(), m.GetTo()}]
}

// isolate cuts id off from every other member in both directions; heal undoes every cut.
func (n *network) isolate(id uint64, others []uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, o := range others {
		if o != id {
			n.cut[[2]uint64{id, o}] = true
			n.cut[[2]uint64{o, id}] = true
		}
	}
}

func (n *network) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]uint64]bool{}
}

type testNode struct {
	name    string
	dir     string
	addr    string
	started bool   // opened once: its address and data dir are fixed
	s       *Store // nil while stopped
	api     *httptest.Server
}

type cluster struct {
	t   testing.TB
	net *network
	cfg func(*Config)

	mu sync.Mutex
	// guarded by mu (the slice is fixed; each node's s field changes on stop and start):
	nodes []*testNode
}

// store returns member i's store, or nil while it is stopped.
func (c *cluster) store(i int) *Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].s
}

// running returns the indexes of running members.
func (c *cluster) running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, nd := range c.nodes {
		if nd.s != nil {
			out = append(out, i)
		}
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RAFTSTORE_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testConfig(name, dir, addr string) Config {
	cfg := DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.RaftAddress = name, dir, addr
	cfg.ClusterToken = "test-token"
	cfg.TickInterval = 20 * time.Millisecond
	cfg.ElectionTicks = 10
	cfg.PromoteInterval = 50 * time.Millisecond
	cfg.RequestTimeout = 5 * time.Second
	cfg.JoinTimeout = 20 * time.Second
	cfg.WALSegmentSize = 1 << 20 // rotations and releases happen in tests too
	return cfg
}

// newCluster starts n members: the first bootstraps, the others join through it, and it
// waits until the cluster has min(n, 5) voters if n is odd.
func newCluster(t testing.TB, n int, tune func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, net: &network{cut: map[[2]uint64]bool{}}, cfg: tune}
	t.Cleanup(c.closeAll)
	for range n {
		c.add()
	}
	c.start(0, nil)
	for i := 1; i < n; i++ {
		c.start(i, []string{c.nodes[0].api.URL})
	}
	want := n
	if want%2 == 0 {
		want--
	}
	c.waitVoters(min(want, 5))
	return c
}

// add adds a member, not started, with an API server for its join handler.
func (c *cluster) add() {
	i := len(c.nodes)
	nd := &testNode{name: fmt.Sprintf("n%d", i), dir: filepath.Join(c.t.TempDir(), fmt.Sprintf("n%d", i)), addr: freeAddr(c.t)}
	nd.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.store(i)
		if s == nil {
			http.Error(w, "stopped", http.StatusServiceUnavailable)
			return
		}
		s.JoinHandler().ServeHTTP(w, r)
	}))
	c.mu.Lock()
	c.nodes = append(c.nodes, nd)
	c.mu.Unlock()
}

func (c *cluster) start(i int, join []string) {
	c.t.Helper()
	nd := c.nodes[i]
	cfg := testConfig(nd.name, nd.dir, nd.addr)
	cfg.Join = join
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	s, err := Open(cfg, testLogger(c.t).With("n", nd.name), nil)
	for try := 0; errors.Is(err, syscall.EADDRINUSE) && !nd.started && try < 3; try++ {
		// freeAddr's port was taken (by another test's connection) before this first start:
		// a member that never ran can start anywhere, from a fresh data dir.
		nd.addr, nd.dir = freeAddr(c.t), filepath.Join(c.t.TempDir(), nd.name)
		cfg.RaftAddress, cfg.DataDir = nd.addr, nd.dir
		s, err = Open(cfg, testLogger(c.t).With("n", nd.name), nil)
	}
	if err != nil {
		c.t.Fatalf("open %s: %v", nd.name, err)
	}
	nd.started = true
	f := c.net.drop
	s.tr.drop.Store(&f)
	c.mu.Lock()
	nd.s = s
	c.mu.Unlock()
}

// stop closes member i (a clean stop; the process-level test does kill -9).
func (c *cluster) stop(i int) {
	c.mu.Lock()
	s := c.nodes[i].s
	c.nodes[i].s = nil
	c.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}

func (c *cluster) restart(i int) { c.start(i, nil) }

func (c *cluster) closeAll() {
	for i, nd := range c.nodes {
		c.stop(i)
		nd.api.Close()
	}
}

func (c *cluster) ids() []uint64 {
	var out []uint64
	for _, i := range c.running() {
		out = append(out, c.store(i).ID())
	}
	return out
}

// leader waits for a member that every running member agrees leads, and returns its index.
func (c *cluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		lead := -1
		agree := true
		for _, i := range c.running() {
			if s := c.store(i); s != nil && s.Role() == v1.RaftLeader {
				lead = i
			}
		}
		if lead >= 0 {
			id := c.store(lead).ID()
			for _, i := range c.running() {
				if m, ok := c.store(i).Leader(); !ok || m.ID != id {
					agree = false
				}
			}
			if agree {
				return lead
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no agreed leader within 20s")
	return -1
}

func (c *cluster) waitVoters(n int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, i := range c.running() {
			s := c.store(i)
			s.mu.Lock()
			conf := s.conf
			s.mu.Unlock()
			if len(conf.GetVoters()) != n || len(conf.GetVotersOutgoing()) != 0 {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	var roles []string
	for _, i := range c.running() {
		roles = append(roles, fmt.Sprintf("%s:%v", c.nodes[i].name, c.store(i).Members()))
	}
	c.t.Fatalf("cluster did not reach %d voters within 30s: %v", n, roles)
}

// waitConverged waits until every running member has applied the same revision.
func (c *cluster) waitConverged() int64 {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		revs := c.revisions()
		if slices.Min(revs) == slices.Max(revs) {
			// Give a last in-flight batch a chance to land, then re-check.
			time.Sleep(3 * c.tick())
			if again := c.revisions(); slices.Equal(again, revs) {
				return revs[0]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("members did not converge within 30s")
	return 0
}

// revisions is every running member's published revision. Applied entries are published when
// their bbolt batch commits (ApplyCommitDelay, docs/store.md): each member is asked to commit
// its open batch first, as a read would, so a revision that looks settled is not one batch behind.
func (c *cluster) revisions() []int64 {
	var revs []int64
	for _, i := range c.running() {
		if s := c.store(i); s != nil {
			select {
			case s.flushc <- struct{}{}:
			default:
			}
		}
	}
	time.Sleep(c.tick())
	for _, i := range c.running() {
		if s := c.store(i); s != nil {
			s.mu.Lock()
			revs = append(revs, s.revision)
			s.mu.Unlock()
		}
	}
	return revs
}

func (c *cluster) tick() time.Duration { return 20 * time.Millisecond }

func tctx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

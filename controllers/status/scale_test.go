package status

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// copyCountingView counts how often the whole view is copied.
type copyCountingView struct {
	*observed.Set
	replicas atomic.Int32
}

func (c *copyCountingView) Replicas() []observed.Replica {
	c.replicas.Add(1)
	return c.Set.Replicas()
}

// Folding many Services between two view changes copies the view once. Before, every Service
// reconcile copied and sorted every replica of the cluster: O(Services × replicas) per change.
func TestReconcileCopiesTheViewOncePerChange(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	view := &copyCountingView{Set: observed.NewSet()}
	view.SetNode(observed.Node{Name: "a", Alive: true, State: "alive"})
	var rs []observed.Replica
	for i := range 10 {
		name := fmt.Sprintf("s%d", i)
		if _, err := st.Create(ctx, service(name, 1)); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, observed.Replica{Service: name, Node: "a", SpecHash: "h", State: v1.ReplicaRunning})
	}
	view.SetNodeReplicas("a", rs)
	cfg := DefaultConfig(st, view, func(*v1.Service) string { return "h" })
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := c.Reconcile(ctx, v1.Key{Kind: v1.KindService, Name: fmt.Sprintf("s%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := view.replicas.Load(); n != 1 {
		t.Fatalf("10 reconciles without a view change copied the view %d times, want 1", n)
	}
	for i := range 10 {
		o, err := st.Get(ctx, v1.KindService, fmt.Sprintf("s%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got := o.(*v1.Service).Status.ReadyReplicas; got != 1 {
			t.Fatalf("s%d: readyReplicas %d, want 1 (its own replica from the grouped view)", i, got)
		}
	}
}

// listCountingStore counts Lists and Gets.
type listCountingStore struct {
	store.Store
	mu          sync.Mutex
	lists, gets int
}

func (s *listCountingStore) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	return s.Store.List(ctx, kind, sel, opts...)
}

func (s *listCountingStore) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.Store.Get(ctx, kind, name, opts...)
}

func (s *listCountingStore) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists, s.gets
}

// While Run runs, a view change is folded from the caches and one snapshot of the view: the
// store is neither listed (every view change listed every Service and Node before) nor read
// per object.
func TestRunFoldsAViewChangeWithoutReadingTheStore(t *testing.T) {
	e := newEnv(t, nil)
	cs := &listCountingStore{Store: e.st}
	cfg := DefaultConfig(cs, e.view, func(*v1.Service) string { return "h2" })
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Clock = e.clk
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ctl = c
	e.run()
	e.eventually("node a folded", func() error {
		if e.node("a").Status.GossipState != "alive" {
			return fmt.Errorf("gossip state %q", e.node("a").Status.GossipState)
		}
		return nil
	})
	lists0, gets0 := cs.counts()
	e.view.SetNodeReplicas("a", []observed.Replica{rep(0, "a", "h2", v1.ReplicaRunning, v1.HealthHealthy)})
	e.eventually("the replica folded into web", func() error {
		if got := e.service().Status.ReadyReplicas; got != 1 {
			return fmt.Errorf("readyReplicas %d", got)
		}
		return nil
	})
	if lists, gets := cs.counts(); lists != lists0 || gets != gets0 {
		t.Fatalf("a view change cost %d lists and %d gets of the store, want none", lists-lists0, gets-gets0)
	}
}

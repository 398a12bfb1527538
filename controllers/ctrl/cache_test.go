package ctrl

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

func svc(name string, nodes ...string) *v1.Service {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ServiceSpec{Image: "x"}}
	for i, n := range nodes {
		s.Status.Assignments = append(s.Status.Assignments, v1.Assignment{Index: int32(i), Node: n})
	}
	return s
}

func byNode(s *v1.Service) []string {
	var out []string
	for _, a := range s.Status.Assignments {
		out = append(out, a.Node)
	}
	return out
}

// events records what a cache's handler is told.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) add(s string) { e.mu.Lock(); e.got = append(e.got, s); e.mu.Unlock() }

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprint(e.got)
}

func (e *events) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.got {
		if g == s {
			return true
		}
	}
	return false
}

func putStatus(t *testing.T, st store.Store, s *v1.Service) {
	t.Helper()
	ctx := context.Background()
	o, err := st.Get(ctx, v1.KindService, s.Metadata.Name)
	if err != nil {
		t.Fatal(err)
	}
	cur := o.(*v1.Service)
	cur.Status = s.Status
	if _, err := st.UpdateStatus(ctx, cur); err != nil {
		t.Fatal(err)
	}
}

func TestCacheFollowsTheStoreAndCountsThePerNodeIndex(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := store.NewMemory()
	for _, s := range []*v1.Service{svc("a"), svc("b")} {
		if _, err := mem.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	putStatus(t, mem, svc("a", "n1", "n1", "n2"))
	var ev events
	c := NewCache(&breakingSource{Memory: mem}, v1.KindService, CacheConfig[*v1.Service]{
		Indexes: map[string]IndexFunc[*v1.Service]{"node": byNode},
		Handler: Handler[*v1.Service]{
			OnAdd:    func(s *v1.Service) { ev.add("add " + s.Metadata.Name) },
			OnUpdate: func(_, s *v1.Service) { ev.add("update " + s.Metadata.Name) },
			OnDelete: func(s *v1.Service) { ev.add("delete " + s.Metadata.Name) },
		},
	})
	go c.Run(ctx)
	if !WaitForSync(ctx, c) {
		t.Fatal("not synced")
	}
	if c.Len() != 2 || !ev.has("add a") || !ev.has("add b") {
		t.Fatalf("after the first list: %d objects, events %v", c.Len(), &ev)
	}
	if got, want := c.Counts("node", ""), map[string]int{"n1": 2, "n2": 1}; !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
	if got := c.Counts("node", "a"); len(got) != 0 {
		t.Fatalf("counts without a: %v, want none", got)
	}
	if got := c.Indexed("node", "n1"); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("indexed under n1: %v, want [a]", got)
	}
	// b's placement arrives through the watch (the breaking source then fails the watch).
	putStatus(t, mem, svc("b", "n2"))
	eventually(t, "b's assignment", func() bool { return c.Counts("node", "")["n2"] == 2 })
	if got, want := c.Counts("node", "b"), map[string]int{"n1": 2, "n2": 1}; !maps.Equal(got, want) {
		t.Fatalf("counts without b %v, want %v", got, want)
	}
	if got := c.Indexed("node", "n2"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("indexed under n2: %v, want [a b]", got)
	}
	// Deleted while the watch was down: the relist must drop it, and say so.
	o, _ := mem.Get(ctx, v1.KindService, "a")
	if _, err := mem.Delete(ctx, v1.KindService, "a", o.GetMetadata().ResourceVersion); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a gone", func() bool { _, ok := c.Get("a"); return !ok })
	if !ev.has("delete a") {
		t.Fatalf("no delete event for a: %v", &ev)
	}
	if got, want := c.Counts("node", ""), map[string]int{"n2": 1}; !maps.Equal(got, want) {
		t.Fatalf("counts after deleting a: %v, want %v", got, want)
	}
	if l := c.List(); len(l) != 1 || l[0].Metadata.Name != "b" {
		t.Fatalf("list %v, want [b]", l)
	}
	if c.Revision() == 0 {
		t.Fatal("revision not kept")
	}
	if c.Indexed("node", "n1") != nil || c.Indexed("nope", "n2") != nil {
		t.Fatal("indexed: a deleted object or an unknown index")
	}
	if c.Counts("nope", "") != nil {
		t.Fatal("an unknown index must count nothing")
	}
}

func TestCacheRunsOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := NewCache[*v1.Node](store.NewMemory(), v1.KindNode, CacheConfig[*v1.Node]{})
	go c.Run(ctx)
	if !WaitForSync(ctx, c) {
		t.Fatal("not synced")
	}
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second Run did not return")
	}
}

// racingSource writes an object between the List and the Watch of an empty store, where a watch
// "from revision 0" starts from the current revision and would not carry it.
type racingSource struct {
	*store.Memory
	once sync.Once
}

func (r *racingSource) Watch(ctx context.Context, kind string, rev int64) (<-chan store.Event, error) {
	r.once.Do(func() {
		if _, err := r.Memory.Create(ctx, svc("early")); err != nil {
			panic(err)
		}
	})
	return r.Memory.Watch(ctx, kind, rev)
}

func TestCacheSeesAnObjectWrittenBetweenListAndWatchOfAnEmptyStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := store.NewMemory()
	c := NewCache[*v1.Service](&racingSource{Memory: mem}, v1.KindService, CacheConfig[*v1.Service]{})
	go c.Run(ctx)
	if !WaitForSync(ctx, c) {
		t.Fatal("not synced")
	}
	if _, ok := c.Get("early"); !ok {
		t.Fatal("the object written between the list and the watch is missing, and no relist will come")
	}
	if _, err := mem.Create(ctx, svc("later")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the later object", func() bool { _, ok := c.Get("later"); return ok })
	if c.Len() != 2 {
		t.Fatalf("%d objects, want 2", c.Len())
	}
}

package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// countingStore counts the reads that decode the store.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	lists map[string]int
	gets  int
}

func (c *countingStore) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	c.mu.Lock()
	c.lists[kind]++
	c.mu.Unlock()
	return c.Store.List(ctx, kind, sel, opts...)
}

func (c *countingStore) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.Get(ctx, kind, name, opts...)
}

func (c *countingStore) listCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists[v1.KindService] + c.lists[v1.KindNode]
}

// countingView counts how often the whole view is copied.
type countingView struct {
	*observed.Set
	replicas atomic.Int32
}

func (c *countingView) Replicas() []observed.Replica {
	c.replicas.Add(1)
	return c.Set.Replicas()
}

func service(name string, replicas int32) *v1.Service {
	return &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &replicas}}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An unplaceable Service waits for a change that could place it; it is not polled. Before the
// informer cache every incomplete plan requeued every 2 s, and each of those reconciles decoded
// every Service: an agent without Docker holding 100 Services burnt 58% of a core.
func TestUnplaceableServiceIsNotPolled(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true, Labels: map[string]string{observed.LabelRuntime: observed.RuntimeNone}})
	s, err := New(Config{Store: st, View: view, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, service("web", 2)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Reconcile(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if c := v1.FindCondition(getSvc(t, st, "web").Status.Conditions, v1.ServiceProgressing); c == nil || c.Reason != v1.ReasonUnschedulable {
		t.Fatalf("condition %+v, want Unschedulable", c)
	}
	if res.RequeueAfter != 0 {
		t.Fatalf("an unplaceable Service is requeued after %v; it must wait for an event", res.RequeueAfter)
	}
}

// A rolling update that waits for readiness is woken by the view; the only timer is its
// progress deadline, and it fires at the deadline.
func TestRollingUpdateRequeuesAtTheProgressDeadline(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	addNode(t, st, "b")
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true})
	view.SetNode(observed.Node{Name: "b", Alive: true})
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	s, err := New(Config{Store: st, View: view, Logger: quiet(), ProgressDeadline: 5 * time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, service("web", 2)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Reconcile(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if c := v1.FindCondition(getSvc(t, st, "web").Status.Conditions, v1.ServiceProgressing); c == nil || c.Reason != v1.ReasonRollingUpdate {
		t.Fatalf("condition %+v, want RollingUpdate", c)
	}
	if want := 5*time.Minute + time.Millisecond; res.RequeueAfter != want {
		t.Fatalf("requeue after %v, want the progress deadline %v", res.RequeueAfter, want)
	}
	clk.SetTime(clk.Now().Add(4 * time.Minute)) // no progress meanwhile
	if res, err = s.Reconcile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if want := time.Minute + time.Millisecond; res.RequeueAfter != want {
		t.Fatalf("4 min later: requeue after %v, want %v", res.RequeueAfter, want)
	}
	clk.SetTime(clk.Now().Add(res.RequeueAfter))
	if res, err = s.Reconcile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if c := v1.FindCondition(getSvc(t, st, "web").Status.Conditions, v1.ServiceProgressing); c == nil || c.Reason != v1.ReasonRolloutFailed {
		t.Fatalf("at the deadline: condition %+v, want RolloutFailed", c)
	}
	if res.RequeueAfter != 0 {
		t.Fatalf("a failed rollout is requeued after %v", res.RequeueAfter)
	}
}

// Reconciling many Services between two view changes reads the view once: no per-reconcile
// copy and sort of every replica in the cluster.
func TestReconcileReadsTheViewOncePerChange(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	view := &countingView{Set: observed.NewSet()}
	view.SetNode(observed.Node{Name: "a", Alive: true})
	s, err := New(Config{Store: st, View: view, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := st.Create(ctx, service(fmt.Sprintf("s%d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if _, err := s.Reconcile(ctx, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := view.replicas.Load(); n != 1 {
		t.Fatalf("10 reconciles without a view change copied the view %d times, want 1", n)
	}
}

// While Run runs, reconciles read Nodes and the other Services' load from the cache: after the
// caches' first list, the store is never listed again, however many Services are planned.
func TestRunNeverListsTheStoreAfterSync(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := store.NewMemory()
	addNode(t, mem, "a")
	addNode(t, mem, "b")
	st := &countingStore{Store: mem, lists: map[string]int{}}
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true})
	view.SetNode(observed.Node{Name: "b", Alive: true})
	s, err := New(Config{Store: st, View: view, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the caches' first lists", func() bool { return st.listCount() >= 2 })
	const n = 20
	for i := range n {
		if _, err := mem.Create(context.Background(), service(fmt.Sprintf("s%02d", i), 3)); err != nil {
			t.Fatal(err)
		}
	}
	placed := func() bool {
		for i := range n {
			o, err := mem.Get(context.Background(), v1.KindService, fmt.Sprintf("s%02d", i))
			if err != nil || len(o.(*v1.Service).Status.Assignments) != 3 {
				return false
			}
		}
		return true
	}
	eventually(t, "every Service placed", placed)
	// The load the reconciles read comes from the cache's index, and matches the store's.
	want := map[string]int{}
	objs, _, _ := mem.List(context.Background(), v1.KindService, v1.Selector{})
	for _, o := range objs {
		if o.GetMetadata().Name == "s00" {
			continue
		}
		for _, a := range o.(*v1.Service).Status.Assignments {
			want[a.Node]++
		}
	}
	eventually(t, "the load index to match the store", func() bool {
		got, err := s.reader().LoadExcept(context.Background(), "s00")
		return err == nil && maps.Equal(got, want)
	})
	if _, ok := s.reader().(cacheReader); !ok {
		t.Fatalf("Run reads through %T, want the caches", s.reader())
	}
	if got := st.listCount(); got != 2 {
		t.Fatalf("the store was listed %d times, want only the 2 first lists of the caches", got)
	}
}

// An unplaceable Service is placed as soon as a node that can take it appears: the wake-up is
// the Node's event, not a timer.
func TestUnplaceableServiceIsPlacedWhenANodeArrives(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.NewMemory()
	addNode(t, st, "a")
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true, Labels: map[string]string{observed.LabelRuntime: observed.RuntimeNone}})
	s, err := New(Config{Store: st, View: view, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, service("web", 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	eventually(t, "web Unschedulable", func() bool {
		c := v1.FindCondition(getSvc(t, st, "web").Status.Conditions, v1.ServiceProgressing)
		return c != nil && c.Reason == v1.ReasonUnschedulable
	})
	addNode(t, st, "b")
	view.SetNode(observed.Node{Name: "b", Alive: true})
	eventually(t, "web placed on b", func() bool {
		as := getSvc(t, st, "web").Status.Assignments
		return len(as) == 1 && as[0].Node == "b"
	})
}

func TestPlacementChangedIgnoresTheLastSeenHeartbeat(t *testing.T) {
	t0 := time.Unix(100, 0)
	t1 := t0.Add(time.Minute)
	base := func() *v1.Node {
		return &v1.Node{Metadata: v1.ObjectMeta{Name: "a", ResourceVersion: "1"}, Spec: v1.NodeSpec{Labels: map[string]string{"zone": "x"}},
			Status: v1.NodeStatus{LastSeen: &t0, Conditions: []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}}}
	}
	for name, tc := range map[string]struct {
		mod  func(*v1.Node)
		want bool
	}{
		"lastSeen only":  {func(n *v1.Node) { n.Metadata.ResourceVersion = "2"; n.Status.LastSeen = &t1 }, false},
		"cordoned":       {func(n *v1.Node) { n.Spec.Unschedulable = true }, true},
		"drained":        {func(n *v1.Node) { n.Spec.Drain = true }, true},
		"spec label":     {func(n *v1.Node) { n.Spec.Labels = map[string]string{"zone": "y"} }, true},
		"metadata label": {func(n *v1.Node) { n.Metadata.Labels = map[string]string{"role": "lb"} }, true},
		"not ready":      {func(n *v1.Node) { n.Status.Conditions[0].Status = v1.ConditionFalse }, true},
	} {
		old, n := base(), base()
		tc.mod(n)
		if got := placementChanged(old, n); got != tc.want {
			t.Errorf("%s: placementChanged = %v, want %v", name, got, tc.want)
		}
		if old.Status.LastSeen != &t0 || old.Metadata.ResourceVersion != "1" {
			t.Errorf("%s: placementChanged modified its input", name)
		}
	}
}

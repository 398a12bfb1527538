package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// countingStore counts status writes per object, and can run a competing write just before
// one (to lose the compare-and-swap).
type countingStore struct {
	store.Store
	mu     sync.Mutex
	writes map[string]int
	before func(obj v1.Object)
}

func (s *countingStore) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	s.mu.Lock()
	s.writes[v1.KeyOf(obj).String()]++
	before := s.before
	s.before = nil
	s.mu.Unlock()
	if before != nil {
		before(obj)
	}
	return s.Store.UpdateStatus(ctx, obj)
}

func (s *countingStore) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[key]
}

var webKey = v1.Key{Kind: v1.KindService, Name: "web"}

// env is a store, a view and a controller on a fake clock: the loop's delays (debounce,
// requeues, the view's coalescing, the resync tickers) fall due when a test steps it.
type env struct {
	t    *testing.T
	st   *countingStore
	view *observed.Set
	ctl  *Controller
	clk  *clocktesting.FakeClock

	mu sync.Mutex
	// guarded by mu:
	reconciled map[v1.Key]int // reconciles done per key while Run runs
	flushes    int
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, st: &countingStore{Store: store.NewMemory(), writes: map[string]int{}}, view: observed.NewSet(),
		clk: clocktesting.NewFakeClock(t0), reconciled: map[v1.Key]int{}}
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		n := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}}
		n.Metadata.Name = name
		if _, err := e.st.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		e.view.SetNode(observed.Node{Name: name, Advertise: "127.0.0." + map[string]string{"a": "1", "b": "2"}[name], Gossip: name + ":7482", Version: "v9", Alive: true, State: "alive"})
	}
	if _, err := e.st.Create(ctx, service("web", 2)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(e.st, e.view, func(*v1.Service) string { return "h2" })
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Clock = e.clk
	cfg.RaftRole = func(node string) (v1.RaftRole, bool) {
		if node == "a" {
			return v1.RaftLeader, true
		}
		return "", false
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.ctl = c
	return e
}

func (e *env) run() {
	e.ctl.afterReconcile = func(k v1.Key) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.reconciled[k]++
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.ctl.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *env) service() *v1.Service {
	o, err := e.st.Get(context.Background(), v1.KindService, "web")
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*v1.Service)
}

func (e *env) node(name string) *v1.Node {
	o, err := e.st.Get(context.Background(), v1.KindNode, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*v1.Node)
}

// eventually waits for cond, stepping the clock by 10ms between checks.
func (e *env) eventually(what string, cond func() error) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		e.clk.Step(10 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	e.t.Fatalf("%s: %v (clock stepped to %s)", what, err, e.clk.Now())
}

// reconciles returns how many reconciles of key are done since run.
func (e *env) reconciles(key v1.Key) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reconciled[key]
}

// flush returns once every key the running loop had queued when flush was called has been
// reconciled: it queues a key of its own behind them (a Node that does not exist: nothing is
// read or written for it) and waits for its reconcile. Keys those reconciles queue in turn are
// not waited for.
func (e *env) flush() {
	e.t.Helper()
	e.mu.Lock()
	e.flushes++
	k := v1.Key{Kind: v1.KindNode, Name: fmt.Sprintf("flush-%d", e.flushes)}
	e.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.ctl.mu.Lock()
		enqueue := e.ctl.enqueue
		e.ctl.mu.Unlock()
		if enqueue != nil {
			enqueue(k)
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the loop did not start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	for e.reconciles(k) == 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("the loop did not reach %s", k)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestControllerFoldsViewIntoStore(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Debounce = 100 * time.Millisecond })
	// The scheduler placed the replicas and is rolling out.
	s := e.service()
	s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "a", SpecHash: "h2"}, {Index: 1, Node: "b", SpecHash: "h2"}}
	s.Status.Conditions = []v1.Condition{{Type: v1.ServiceProgressing, Status: v1.ConditionTrue, Reason: v1.ReasonRollingUpdate, LastTransitionTime: t0}}
	if _, err := e.st.UpdateStatus(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	e.view.SetNodeReplicas("a", []observed.Replica{rep(0, "a", "h2", v1.ReplicaRunning, v1.HealthHealthy)})
	e.view.SetNodeReplicas("b", []observed.Replica{rep(1, "b", "h1", v1.ReplicaRunning, v1.HealthHealthy)})
	e.run()

	e.eventually("service status", func() error {
		st := e.service().Status
		if st.ReadyReplicas != 2 || st.UpdatedReplicas != 1 || cond(st, v1.ServiceReady) != "True/AllReplicasReady" {
			return fmt.Errorf("status %+v", st)
		}
		if len(st.Assignments) != 2 || cond(st, v1.ServiceProgressing) != "True/RollingUpdate" {
			return fmt.Errorf("scheduler's fields lost: %+v", st)
		}
		return nil
	})
	e.eventually("node status", func() error {
		a, b := e.node("a").Status, e.node("b").Status
		if c := v1.FindCondition(a.Conditions, v1.NodeReady); c == nil || c.Status != v1.ConditionTrue {
			return fmt.Errorf("a: %+v", a)
		}
		if a.RaftRole != v1.RaftLeader || b.RaftRole != "" || a.Addresses.Advertise != "127.0.0.1" || a.AgentVersion != "v9" || a.LastSeen == nil || a.GossipState != "alive" {
			return fmt.Errorf("a: %+v, b: %+v", a, b)
		}
		return nil
	})

	// b dies: its replica leaves the view.
	e.view.SetNode(observed.Node{Name: "b", Alive: false, State: "dead", LastChange: e.clk.Now()})
	e.eventually("death folded", func() error {
		st := e.service().Status
		if st.ReadyReplicas != 1 || cond(st, v1.ServiceDegraded) != "True/ReplicasNotReady" {
			return fmt.Errorf("service %+v", st)
		}
		if c := v1.FindCondition(e.node("b").Status.Conditions, v1.NodeReady); c == nil || c.Reason != v1.ReasonNodeDead {
			return fmt.Errorf("node b %+v", c)
		}
		return nil
	})

	// Nothing changes: nothing is written, not by a debounced requeue falling due nor by the
	// Service resync reconciling web again.
	e.clk.Step(e.ctl.cfg.Debounce)
	e.flush()
	w, n := e.st.count("services/web"), e.reconciles(webKey)
	e.clk.Step(e.ctl.cfg.ServiceResync)
	e.eventually("web reconciled by the resync", func() error {
		if e.reconciles(webKey) == n {
			return errors.New("not yet")
		}
		return nil
	})
	e.flush()
	if got := e.st.count("services/web"); got != w {
		t.Fatalf("%d writes without a change", got-w)
	}
}

func TestFlappingReplicaIsDebounced(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Debounce = 400 * time.Millisecond })
	e.run()
	e.eventually("first status", func() error {
		if e.st.count("services/web") == 0 {
			return errors.New("not written")
		}
		return nil
	})
	start := e.st.count("services/web")
	began := e.clk.Now()
	for i := range 100 {
		h := v1.HealthHealthy
		if i%2 == 0 {
			h = v1.HealthUnhealthy
		}
		e.view.SetNodeReplicas("a", []observed.Replica{rep(0, "a", "h2", v1.ReplicaRunning, h)})
		// 10ms between flaps; the flush gives the loop its turn (the bound below is on the
		// clock, so how many flaps it sees does not matter to it).
		e.clk.Step(10 * time.Millisecond)
		e.flush()
	}
	e.view.SetNodeReplicas("a", []observed.Replica{rep(0, "a", "h2", v1.ReplicaRunning, v1.HealthHealthy)})
	flapped := e.clk.Since(began)
	e.eventually("final state written", func() error {
		if st := e.service().Status; st.ReadyReplicas != 1 {
			return fmt.Errorf("ready %d", st.ReadyReplicas)
		}
		return nil
	})
	writes := e.st.count("services/web") - start
	// At most one write per debounce interval, plus the last one after it.
	if limit := int(flapped/(400*time.Millisecond)) + 2; writes > limit {
		t.Fatalf("%d writes in %s of flapping, limit %d", writes, flapped, limit)
	}
	t.Logf("%d status writes for 101 changes in %s", writes, flapped.Round(time.Millisecond))
}

func TestConflictIsRetriedKeepingTheOtherWriter(t *testing.T) {
	e := newEnv(t, nil)
	e.view.SetNodeReplicas("a", []observed.Replica{rep(0, "a", "h2", v1.ReplicaRunning, v1.HealthHealthy)})
	// Just before our write, the scheduler writes assignments.
	e.st.mu.Lock()
	e.st.before = func(v1.Object) {
		s := e.service()
		s.Status.Assignments = []v1.Assignment{{Index: 0, Node: "a"}}
		if _, err := e.st.Store.UpdateStatus(context.Background(), s); err != nil {
			t.Error(err)
		}
	}
	e.st.mu.Unlock()
	key := v1.Key{Kind: v1.KindService, Name: "web"}
	res, err := e.ctl.Reconcile(context.Background(), key)
	if err != nil || res.RequeueAfter == 0 {
		t.Fatalf("conflict: res %+v err %v, want a short requeue", res, err)
	}
	if _, err := e.ctl.Reconcile(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	st := e.service().Status
	if st.ReadyReplicas != 1 || len(st.Assignments) != 1 {
		t.Fatalf("after retry: %+v", st)
	}
}

func TestInactiveControllerDoesNotWrite(t *testing.T) {
	var active atomic.Bool
	e := newEnv(t, func(c *Config) { c.IsLeader = active.Load })
	key := v1.Key{Kind: v1.KindService, Name: "web"}
	if _, err := e.ctl.Reconcile(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if n := e.st.count("services/web"); n != 0 {
		t.Fatalf("%d writes while inactive", n)
	}
	active.Store(true)
	if _, err := e.ctl.Reconcile(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if n := e.st.count("services/web"); n != 1 {
		t.Fatalf("%d writes once active", n)
	}
	// Gone objects are fine.
	if _, err := e.ctl.Reconcile(context.Background(), v1.Key{Kind: v1.KindService, Name: "nope"}); err != nil {
		t.Fatal(err)
	}
}

func TestAliveNodeLastSeenIsRefreshedPeriodically(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.LastSeenRefresh = time.Minute
		c.Debounce = time.Second
	})
	key := v1.Key{Kind: v1.KindNode, Name: "a"}
	res, err := e.ctl.Reconcile(context.Background(), key)
	if err != nil || res.RequeueAfter != time.Minute {
		t.Fatalf("res %+v err %v", res, err)
	}
	e.clk.Step(30 * time.Second)
	if _, err := e.ctl.Reconcile(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if n := e.st.count("nodes/a"); n != 1 {
		t.Fatalf("%d writes within the refresh interval", n)
	}
	e.clk.Step(31 * time.Second)
	if _, err := e.ctl.Reconcile(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if n := e.st.count("nodes/a"); n != 2 {
		t.Fatalf("%d writes after the refresh interval", n)
	}
	if ls := e.node("a").Status.LastSeen; ls == nil || !ls.Equal(t0.Add(61*time.Second)) {
		t.Fatalf("lastSeen %v", ls)
	}
}

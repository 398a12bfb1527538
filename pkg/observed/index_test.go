package observed

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// countingView counts the reads of a Set.
type countingView struct {
	*Set
	replicas atomic.Int32
}

func (c *countingView) Replicas() []Replica {
	c.replicas.Add(1)
	return c.Set.Replicas()
}

func TestIndexReadsTheViewOncePerChange(t *testing.T) {
	set := NewSet()
	set.SetNode(Node{Name: "a", Alive: true})
	set.SetNodeReplicas("a", []Replica{{Service: "web", Index: 1, Node: "a"}, {Service: "web", Index: 0, Node: "a"}, {Service: "db", Node: "a"}})
	v := &countingView{Set: set}
	ix := NewIndex(v)
	for range 100 {
		s := ix.Snapshot()
		if got := s.Replicas["web"]; len(got) != 2 || got[0].Index != 0 || got[1].Index != 1 {
			t.Fatalf("web replicas %+v, want indices 0 and 1 in order", got)
		}
	}
	if n := v.replicas.Load(); n != 1 {
		t.Fatalf("100 reads without a change read the view %d times, want 1", n)
	}
	set.SetNodeReplicas("a", []Replica{{Service: "db", Node: "a"}})
	if got := ix.Snapshot().Replicas["web"]; len(got) != 0 {
		t.Fatalf("after the change: web %+v, want none", got)
	}
	if n := v.replicas.Load(); n != 2 {
		t.Fatalf("view read %d times after one change, want 2", n)
	}
	if _, ok := ix.Snapshot().Nodes["a"]; !ok {
		t.Fatal("node a missing from the snapshot")
	}
}

func TestDiffNamesWhatChanged(t *testing.T) {
	base := func() *Set {
		s := NewSet()
		s.SetNode(Node{Name: "a", Alive: true, State: "alive"})
		s.SetNode(Node{Name: "b", Alive: true, State: "alive"})
		s.SetNodeReplicas("a", []Replica{{Service: "web", Node: "a", State: v1.ReplicaRunning, UpdatedAt: time.Unix(1, 0)}, {Service: "db", Node: "a"}})
		s.SetNodeReplicas("b", []Replica{{Service: "web", Index: 1, Node: "b"}})
		return s
	}
	old := TakeSnapshot(base())

	s := base()
	if svcs, nodes := TakeSnapshot(s).Diff(old); len(svcs) != 0 || len(nodes) != 0 {
		t.Fatalf("same state: %v %v, want no difference", svcs, nodes)
	}
	// UpdatedAt alone is no change.
	s.SetNodeReplicas("a", []Replica{{Service: "web", Node: "a", State: v1.ReplicaRunning, UpdatedAt: time.Unix(99, 0)}, {Service: "db", Node: "a"}})
	if svcs, _ := TakeSnapshot(s).Diff(old); len(svcs) != 0 {
		t.Fatalf("UpdatedAt only: %v, want no difference", svcs)
	}
	s.SetNodeReplicas("a", []Replica{{Service: "web", Node: "a", State: v1.ReplicaRunning, Health: v1.HealthUnhealthy}, {Service: "db", Node: "a"}})
	if svcs, nodes := TakeSnapshot(s).Diff(old); !slices.Equal(svcs, []string{"web"}) || len(nodes) != 0 {
		t.Fatalf("web's health: %v %v, want [web] []", svcs, nodes)
	}
	// A node dying takes its replicas out of the view (Replicas reports live nodes only).
	s = base()
	s.SetNode(Node{Name: "b", Alive: false, State: "dead"})
	if svcs, nodes := TakeSnapshot(s).Diff(old); !slices.Equal(svcs, []string{"web"}) || !slices.Equal(nodes, []string{"b"}) {
		t.Fatalf("b died: %v %v, want [web] [b]", svcs, nodes)
	}
	s = base()
	s.RemoveNode("a")
	if svcs, nodes := TakeSnapshot(s).Diff(old); !slices.Equal(svcs, []string{"db", "web"}) || !slices.Equal(nodes, []string{"a"}) {
		t.Fatalf("a removed: %v %v, want [db web] [a]", svcs, nodes)
	}
	if svcs, nodes := old.Diff(nil); !slices.Equal(svcs, []string{"db", "web"}) || !slices.Equal(nodes, []string{"a", "b"}) {
		t.Fatalf("against nothing: %v %v, want everything", svcs, nodes)
	}
}

// Every Replica field but UpdatedAt must count as a change: a field added to Replica and
// forgotten in sameReplica would silently stop waking the controllers.
func TestDiffSeesEveryReplicaField(t *testing.T) {
	rt := reflect.TypeOf(Replica{})
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Name == "UpdatedAt" {
			continue
		}
		var r Replica
		fv := reflect.ValueOf(&r).Elem().Field(i)
		switch fv.Kind() {
		case reflect.String:
			fv.SetString("x")
		case reflect.Int, reflect.Int32, reflect.Int64:
			fv.SetInt(7)
		case reflect.Map:
			fv.Set(reflect.ValueOf(map[string]string{"8080/tcp": "h:1"}))
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", f.Name, fv.Kind())
		}
		if sameReplica(Replica{}, r) {
			t.Errorf("a change of Replica.%s is not seen", f.Name)
		}
	}
}

func TestOnChangeCallsAtOnceCoalescesAndLosesNothing(t *testing.T) {
	set := NewSet()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var calls []int // how many nodes fn saw
	block := make(chan struct{})
	blocked := make(chan struct{})
	go OnChange(ctx, clk, set, 30*time.Millisecond, func() {
		mu.Lock()
		n := len(calls)
		calls = append(calls, len(set.Nodes()))
		mu.Unlock()
		if n == 1 {
			close(blocked)
			<-block // a change arrives while fn runs
		}
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
	waitFor(t, "the first call", func() bool { return count() == 1 })
	// A burst within the coalesce interval of the first call: folded into one call at the end
	// of the interval, none before the clock gets there.
	for _, n := range []string{"a", "b", "c"} {
		set.SetNode(Node{Name: n})
	}
	waitFor(t, "the coalesce timer", clk.HasWaiters)
	if n := count(); n != 1 {
		t.Fatalf("%d calls before the coalesce interval ended, want 1", n)
	}
	clk.Step(30 * time.Millisecond)
	<-blocked
	set.SetNode(Node{Name: "d"})
	close(block)
	waitFor(t, "the coalesce timer after the change made during fn", clk.HasWaiters)
	clk.Step(30 * time.Millisecond)
	waitFor(t, "the change made during fn", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) > 0 && calls[len(calls)-1] == 4
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, []int{0, 3, 4}) {
		t.Fatalf("calls saw %v nodes, want [0 3 4]: one call at once, one per coalesced burst", calls)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

package events

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

func storedEvent(t *testing.T, st store.Store, name string, lastSeen time.Time) *v1.Event {
	t.Helper()
	e := &v1.Event{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.EventSpec{InvolvedObject: web, Reason: v1.EventStarted,
		Message: name, FirstSeen: lastSeen, LastSeen: lastSeen}}
	e.Default()
	o, err := st.Create(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1.Event)
}

func TestVictims(t *testing.T) {
	now := t0
	ev := func(name string, ago time.Duration) *v1.Event {
		return &v1.Event{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.EventSpec{LastSeen: now.Add(-ago)}}
	}
	names := func(es []*v1.Event, causes []string) string {
		s := ""
		for i, e := range es {
			s += e.Metadata.Name + ":" + causes[i] + " "
		}
		return s
	}
	all := []*v1.Event{ev("fresh", time.Minute), ev("old", 2*time.Hour), ev("mid", 30*time.Minute), ev("older", 3*time.Hour), ev("new", 0)}
	for _, tc := range []struct {
		name      string
		maxAge    time.Duration
		maxEvents int
		limit     int
		want      string
	}{
		{"age only", time.Hour, 100, 100, "older:age old:age "},
		{"age then count", time.Hour, 2, 100, "older:age old:age mid:count "},
		{"count only", 24 * time.Hour, 3, 100, "older:count old:count "},
		{"limit", time.Hour, 1, 3, "older:age old:age mid:count "},
		{"nothing", 24 * time.Hour, 10, 100, ""},
		{"exactly maxAge is kept", 30 * time.Minute, 10, 100, "older:age old:age "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, c := Victims(all, now, tc.maxAge, tc.maxEvents, tc.limit)
			if got := names(v, c); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSweepDeletesByAgeAndCount(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	clk := clocktesting.NewFakeClock(t0)
	for i := range 10 {
		storedEvent(t, st, fmt.Sprintf("e%d", i), t0.Add(-time.Duration(i)*10*time.Minute)) // e0 newest
	}
	var leader atomic.Bool
	leader.Store(true)
	reg := prometheus.NewRegistry()
	s, err := NewSweeper(SweeperConfig{Store: st, MaxAge: 65 * time.Minute, MaxEvents: 5, MaxDeletes: 3, Clock: clk,
		IsLeader: leader.Load, Logger: quiet(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// e7, e8, e9 are older than 65m; e5, e6 are over the count. Three deletes per sweep.
	if n, err := s.Sweep(ctx); n != 3 || err != nil {
		t.Fatalf("first sweep: %d, %v", n, err)
	}
	if n, err := s.Sweep(ctx); n != 2 || err != nil {
		t.Fatalf("second sweep: %d, %v", n, err)
	}
	left := events(t, st)
	if len(left) != 5 || left[0].Metadata.Name != "e0" || left[4].Metadata.Name != "e4" {
		t.Fatalf("left %d events", len(left))
	}
	if a, c := testutil.ToFloat64(s.deleted.WithLabelValues("age")), testutil.ToFloat64(s.deleted.WithLabelValues("count")); a != 3 || c != 2 {
		t.Fatalf("deleted by age %v, by count %v", a, c)
	}

	// Time passes: everything ages out, but not while another node holds the lease.
	clk.Step(2 * time.Hour)
	leader.Store(false)
	if n, err := s.Sweep(ctx); n != 0 || err != ErrNotLeader {
		t.Fatalf("sweep as a follower: %d, %v", n, err)
	}
	if len(events(t, st)) != 5 {
		t.Fatal("a follower deleted events")
	}
	leader.Store(true)
	if n, _ := s.Sweep(ctx); n != 3 {
		t.Fatalf("sweep: %d", n)
	}
}

// conflictStore updates an Event between the sweeper's list and its delete.
type conflictStore struct {
	store.Store
	touch string
}

func (c *conflictStore) Delete(ctx context.Context, kind, name, rv string) (v1.Object, error) {
	if name == c.touch {
		o, err := c.Store.Get(ctx, kind, name)
		if err != nil {
			return nil, err
		}
		e := o.(*v1.Event)
		e.Spec.Count++
		e.Spec.LastSeen = t0
		if _, err := c.Store.Update(ctx, e); err != nil {
			return nil, err
		}
	}
	return c.Store.Delete(ctx, kind, name, rv)
}

// An Event seen again after the sweeper listed it is not deleted.
func TestSweepKeepsAnEventSeenAgain(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	storedEvent(t, mem, "stale", t0.Add(-2*time.Hour))
	storedEvent(t, mem, "revived", t0.Add(-2*time.Hour))
	s, err := NewSweeper(SweeperConfig{Store: &conflictStore{Store: mem, touch: "revived"}, Clock: clocktesting.NewFakeClock(t0), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	left := events(t, mem)
	if len(left) != 1 || left[0].Metadata.Name != "revived" || left[0].Spec.Count != 2 {
		t.Fatalf("left %+v", left)
	}
}

// Run sweeps at once, then on its ticker.
func TestSweeperRun(t *testing.T) {
	st := store.NewMemory()
	clk := clocktesting.NewFakeClock(t0)
	storedEvent(t, st, "a", t0.Add(-2*time.Hour))
	s, err := NewSweeper(SweeperConfig{Store: st, Clock: clk, Interval: time.Minute, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	waitEvents := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(events(t, st)) != n {
			if time.Now().After(deadline) {
				t.Fatalf("want %d events, have %d", n, len(events(t, st)))
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitEvents(0)
	storedEvent(t, st, "b", t0)
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(2 * time.Hour) // b ages out at the next tick
	waitEvents(0)
	cancel()
	<-done
}

package election

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// cutStore is a store whose calls fail while cut, as for a node partitioned from the quorum.
type cutStore struct {
	store.Store
	cut atomic.Bool
}

func (c *cutStore) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	if c.cut.Load() {
		return nil, store.ErrUnavailable
	}
	return c.Store.Get(ctx, kind, name, opts...)
}

func (c *cutStore) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	if c.cut.Load() {
		return nil, store.ErrUnavailable
	}
	return c.Store.Update(ctx, obj)
}

func testConfig(st Store, id string) Config {
	c := DefaultConfig("controller", id)
	c.Store = st
	c.Duration = time.Second
	c.RenewInterval = 100 * time.Millisecond
	return c
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestConfigValidation(t *testing.T) {
	st := store.NewMemory()
	for _, c := range []Config{
		{Store: st, Name: "", Identity: "a"},
		{Store: st, Name: "Bad_Name", Identity: "a"},
		{Store: st, Name: "lb", Identity: ""},
		{Store: st, Name: "lb", Identity: "a", Duration: 2 * time.Second, RenewInterval: time.Second},
		{Name: "lb", Identity: "a"}, // no Store
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", c)
		}
	}
}

func TestSingleCandidateLeadsAndReleasesOnStop(t *testing.T) {
	st := store.NewMemory()
	e, err := New(testConfig(st, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var led atomic.Bool
	done := make(chan struct{})
	go func() {
		e.Run(ctx, func(ctx context.Context) { led.Store(true); <-ctx.Done() })
		close(done)
	}()
	waitFor(t, "leadership", 2*time.Second, func() bool { return e.IsLeader() && led.Load() })
	cancel()
	<-done
	if e.IsLeader() {
		t.Fatal("still leader after Run returned")
	}
	obj, err := st.Get(context.Background(), v1.KindLease, "controller")
	if err != nil {
		t.Fatal(err)
	}
	if h := obj.(*v1.Lease).Spec.HolderIdentity; h != "" {
		t.Fatalf("lease not released: holder %q", h)
	}
}

func TestHandoverAfterReleaseIsFast(t *testing.T) {
	st := store.NewMemory()
	a, _ := New(testConfig(st, "a"))
	b, _ := New(testConfig(st, "b"))
	actx, acancel := context.WithCancel(context.Background())
	adone := make(chan struct{})
	go func() { a.Run(actx, nil); close(adone) }()
	waitFor(t, "a leading", 2*time.Second, a.IsLeader)
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	go b.Run(bctx, nil)
	time.Sleep(300 * time.Millisecond)
	if b.IsLeader() {
		t.Fatal("b leads while a holds the lease")
	}
	acancel()
	<-adone
	// Released: b takes over at its next attempt, well before the 1s expiry.
	waitFor(t, "b leading after release", 500*time.Millisecond, b.IsLeader)
	obj, _ := st.Get(context.Background(), v1.KindLease, "controller")
	if got := obj.(*v1.Lease).Spec.LeaseTransitions; got != 1 {
		t.Fatalf("leaseTransitions = %d, want 1", got)
	}
}

// TestPartitionedHolderStopsBeforeTakeover cuts the holder off the store and samples both
// candidates continuously: at no instant may both believe they lead.
func TestPartitionedHolderStopsBeforeTakeover(t *testing.T) {
	mem := store.NewMemory()
	sa := &cutStore{Store: mem}
	a, _ := New(testConfig(sa, "a"))
	b, _ := New(testConfig(mem, "b"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var aLeadCtxEnded atomic.Bool
	go a.Run(ctx, func(ctx context.Context) { <-ctx.Done(); aLeadCtxEnded.Store(true) })
	waitFor(t, "a leading", 2*time.Second, a.IsLeader)
	go b.Run(ctx, nil)

	var (
		mu               sync.Mutex
		aStopped, bStart time.Time
		both             int
	)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			al, bl := a.IsLeader(), b.IsLeader()
			now := time.Now()
			mu.Lock()
			if al && bl {
				both++
			}
			if !al && aStopped.IsZero() {
				aStopped = now
			}
			if bl && bStart.IsZero() {
				bStart = now
			}
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	sa.cut.Store(true)
	waitFor(t, "b taking over", 3*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !bStart.IsZero()
	})
	close(stop)
	<-sampled
	if both > 0 {
		t.Fatalf("both candidates believed they led in %d samples", both)
	}
	if !aStopped.Before(bStart) {
		t.Fatalf("a stopped at %v, b started at %v: no gap", aStopped, bStart)
	}
	waitFor(t, "a's leader context cancelled", time.Second, aLeadCtxEnded.Load)
	t.Logf("gap between a stopping and b starting: %s", bStart.Sub(aStopped))
}

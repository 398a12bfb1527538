package mesh

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// listCounter counts the Service lists (the allocation snapshots).
type listCounter struct {
	store.Store
	mu    sync.Mutex
	lists int
}

func (s *listCounter) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	if kind == v1.KindService {
		s.mu.Lock()
		s.lists++
		s.mu.Unlock()
	}
	return s.Store.List(ctx, kind, sel, opts...)
}

func (s *listCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// TestSnapshotAgeOnTheClock: allocations reuse the list of every Service's addresses for
// SnapshotMaxAge, measured on Config.Clock, then list again.
func TestSnapshotAgeOnTheClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	st := &listCounter{Store: store.NewMemory()}
	c, err := New(Config{Store: st, CIDR: netip.MustParsePrefix("10.77.0.0/24"), Clock: clk, SnapshotMaxAge: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if _, err := st.Create(ctx, service(n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	reconcile := func(name string, wantLists int) {
		t.Helper()
		if _, err := c.Reconcile(ctx, name); err != nil {
			t.Fatal(err)
		}
		if n := st.count(); n != wantLists {
			t.Fatalf("after %s: %d lists, want %d", name, n, wantLists)
		}
	}
	reconcile("a", 1)
	clk.SetTime(clk.Now().Add(time.Second - time.Nanosecond))
	reconcile("b", 1) // the snapshot is younger than SnapshotMaxAge: reused
	clk.SetTime(clk.Now().Add(time.Nanosecond))
	reconcile("c", 2) // as old as SnapshotMaxAge: listed again
	for _, n := range []string{"a", "b", "c"} {
		o, err := st.Get(ctx, v1.KindService, n)
		if err != nil {
			t.Fatal(err)
		}
		if o.(*v1.Service).Status.VirtualIP == "" {
			t.Fatalf("%s got no address: %+v", n, o.(*v1.Service).Status)
		}
	}
}

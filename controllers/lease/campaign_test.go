package lease

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/election"
	"github.com/constellation-sh/constellation/pkg/store"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

func putNode(t *testing.T, st store.Store, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	if obj, err := st.Get(ctx, v1.KindNode, name); err == nil {
		n := obj.(*v1.Node)
		n.Spec.Labels = labels
		if _, err := st.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
		return
	}
	n := &v1.Node{}
	n.Metadata.Name = name
	n.Spec.Labels = labels
	n.Default()
	if _, err := st.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func holder(st store.Store) string {
	obj, err := st.Get(context.Background(), v1.KindLease, v1.LeaseLB)
	if err != nil {
		return ""
	}
	return obj.(*v1.Lease).Spec.HolderIdentity
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCampaignFollowsRoleLabel: of three nodes only those labelled role=lb campaign; exactly one
// leads; removing the label from the leader releases the lease to another lb node; a node that
// gains the label joins.
func TestCampaignFollowsRoleLabel(t *testing.T) {
	st := store.NewMemory()
	lb := map[string]string{"role": "lb"}
	putNode(t, st, "n1", lb)
	putNode(t, st, "n2", lb)
	putNode(t, st, "n3", map[string]string{"role": "worker"})
	camps := map[string]*Campaign{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	for _, n := range []string{"n1", "n2", "n3"} {
		c, err := New(Config{Store: st, Node: n, Logger: quiet, NewElector: func() (Elector, error) {
			cfg := election.DefaultConfig(v1.LeaseLB, n)
			cfg.Store, cfg.Duration, cfg.Logger = st, 2*time.Second, quiet
			return election.New(cfg)
		}})
		if err != nil {
			t.Fatal(err)
		}
		camps[n] = c
		go func() { c.Run(ctx, ctrl.Options{Logger: quiet}); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range 3 {
			<-done
		}
	}()
	leaders := func() []string {
		var out []string
		for n, c := range camps {
			if c.IsLeader() {
				out = append(out, n)
			}
		}
		return out
	}
	waitFor(t, "one lb leader", func() bool { return len(leaders()) == 1 && holder(st) == leaders()[0] })
	if camps["n3"].Campaigning() {
		t.Fatal("n3 is not labelled role=lb but campaigns")
	}
	first := leaders()[0]
	other := map[string]string{"n1": "n2", "n2": "n1"}[first]

	// The leader loses the label: it stops campaigning and releases; the other lb node takes
	// over without waiting for expiry.
	start := time.Now()
	putNode(t, st, first, nil)
	waitFor(t, "the other node leading", func() bool { return holder(st) == other && camps[other].IsLeader() })
	t.Logf("handover on label removal took %s (lease duration 2s: released, not expired)", time.Since(start).Round(time.Millisecond))
	if camps[first].Campaigning() || camps[first].IsLeader() {
		t.Fatal("unlabelled node still campaigning")
	}
	putNode(t, st, "n3", lb)
	waitFor(t, "n3 campaigning", func() bool { return camps["n3"].Campaigning() })
	for range 20 {
		if n := len(leaders()); n > 1 {
			t.Fatalf("%d leaders at once", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCampaignStopsOnShutdown: ending Run releases the lease.
func TestCampaignStopsOnShutdown(t *testing.T) {
	st := store.NewMemory()
	putNode(t, st, "n1", map[string]string{"role": "lb"})
	c, err := New(Config{Store: st, Node: "n1", Logger: quiet, NewElector: func() (Elector, error) {
		cfg := election.DefaultConfig(v1.LeaseLB, "n1")
		cfg.Store, cfg.Duration, cfg.Logger = st, 2*time.Second, quiet
		return election.New(cfg)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, ctrl.Options{Logger: quiet}); close(done) }()
	waitFor(t, "n1 leading", func() bool { return c.IsLeader() })
	cancel()
	<-done
	if h := holder(st); h != "" {
		t.Fatalf("lease still held by %q after shutdown", h)
	}
}

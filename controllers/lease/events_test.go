package lease

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/election"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/events/eventstest"
	"github.com/constellation-sh/constellation/pkg/store"
)

func leaseEvents(t *testing.T, st store.Store) string {
	t.Helper()
	return strings.Join(eventstest.Lines(t, st, eventstest.From{Component: "lease", Node: "n1"}), "\n")
}

// A real campaign: the node labelled role=lb acquires the lb Lease (LeaseAcquired), and gives
// it up when the label goes (LeaseReleased).
func TestCampaignRecordsLeaseEvents(t *testing.T) {
	st := store.NewMemory()
	putNode(t, st, "n1", map[string]string{"role": "lb"})
	rec, err := events.New(events.Config{Store: st, Node: "n1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Store: st, Node: "n1", Logger: quiet, Events: rec, NewElector: func() (Elector, error) {
		cfg := election.DefaultConfig(v1.LeaseLB, "n1")
		cfg.Store, cfg.Duration, cfg.Logger = st, 2*time.Second, quiet
		return election.New(cfg)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { c.Run(ctx, ctrl.Options{Logger: quiet}); close(done) }()
	waitFor(t, "n1 to lead", c.IsLeader)
	waitFor(t, "LeaseAcquired", func() bool {
		rec.Flush(ctx)
		return leaseEvents(t, st) == "Lease/lb Normal LeaseAcquired 1 node n1 acquired the lease"
	})
	putNode(t, st, "n1", nil)
	waitFor(t, "LeaseReleased", func() bool {
		rec.Flush(ctx)
		return leaseEvents(t, st) == "Lease/lb Normal LeaseAcquired 1 node n1 acquired the lease\n"+
			"Lease/lb Normal LeaseReleased 1 node n1 released the lease"
	})
	cancel()
	<-done
}

// A term that ends while the campaign goes on is a lost lease.
func TestObserveLost(t *testing.T) {
	st := store.NewMemory()
	rec, err := events.New(events.Config{Store: st, Node: "n1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	parent := context.Background()
	term, end := context.WithCancel(parent)
	ran := false
	lead := Observe(parent, rec, v1.LeaseController, "n1", func(context.Context) { ran = true })
	end()
	lead(term)
	rec.Flush(parent)
	want := "Lease/controller Normal LeaseAcquired 1 node n1 acquired the lease\n" +
		"Lease/controller Warning LeaseLost 1 node n1 lost the lease: it could not renew it in time"
	if got := leaseEvents(t, st); got != want || !ran {
		t.Fatalf("events (lead ran: %v):\n%s\nwant:\n%s", ran, got, want)
	}
}

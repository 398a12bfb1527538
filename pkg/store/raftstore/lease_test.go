package raftstore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/election"
)

// The lease elector works over the replicated store: one holder among candidates on three
// members, and a takeover when the holder's member is cut off from the others; the cut-off
// holder stops believing it leads before the new holder starts.
func TestLeaseOverRaft(t *testing.T) {
	c := newCluster(t, 3, nil)
	type cand struct {
		e       *election.Elector
		leading atomic.Bool
		start   atomic.Int64 // when it last started leading
		stop    atomic.Int64 // when it last stopped leading
	}
	cands := make([]*cand, 3)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range cands {
		cfg := election.DefaultConfig("controller", c.nodes[i].name)
		cfg.Store, cfg.Duration, cfg.RenewInterval = c.store(i), 2*time.Second, 200*time.Millisecond
		e, err := election.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cd := &cand{e: e}
		cands[i] = cd
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Run(ctx, func(lctx context.Context) {
				cd.start.Store(time.Now().UnixNano())
				cd.leading.Store(true)
				<-lctx.Done()
				cd.leading.Store(false)
				cd.stop.Store(time.Now().UnixNano())
			})
		}()
	}
	holder := func() int {
		h := -1
		for i, cd := range cands {
			if cd.leading.Load() {
				if h >= 0 {
					t.Fatalf("two holders: %s and %s", c.nodes[h].name, c.nodes[i].name)
				}
				h = i
			}
		}
		return h
	}
	deadline := time.Now().Add(20 * time.Second)
	for holder() < 0 {
		if time.Now().After(deadline) {
			t.Fatal("nobody acquired the lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	first := holder()
	c.net.isolate(c.store(first).ID(), c.ids())
	deadline = time.Now().Add(30 * time.Second)
	for {
		h := holder()
		if h >= 0 && h != first {
			if cands[first].leading.Load() || cands[first].stop.Load() > cands[h].start.Load() {
				t.Fatalf("%s took over before the cut-off holder %s stopped", c.nodes[h].name, c.nodes[first].name)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no takeover after the holder was cut off")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.net.heal()
}

package raftstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

// The group-commit rules, step by step: no hold below groupSiblings in flight or once a
// quarter of them arrived already; a hold ends when that count is reached; timeouts make the
// following Readies pass without a hold, twice as many after each further timeout (bounded),
// and a hold that filled resets that.
func TestGroupCommitRules(t *testing.T) {
	type step struct {
		do                 string // "hold", "arrived", "timeout"
		inflight           int64
		before, proposed   uint64
		want               bool
		wantSkip, wantBack int
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"few in flight: never", []step{
			{do: "hold", inflight: 1, before: 10, proposed: 10, want: false},
			{do: "hold", inflight: groupSiblings - 1, before: 10, proposed: 10, want: false},
		}},
		{"many in flight: hold for a quarter of them", []step{
			{do: "hold", inflight: 64, before: 100, proposed: 103, want: true},
			{do: "arrived", proposed: 115, want: false},
			{do: "arrived", proposed: 116, want: true},
		}},
		{"a quarter arrived during the Ready: no hold", []step{
			{do: "hold", inflight: 64, before: 100, proposed: 116, want: false},
		}},
		{"timeouts back off, doubling, bounded", []step{
			{do: "hold", inflight: 16, before: 0, proposed: 0, want: true},
			{do: "timeout", wantSkip: 1, wantBack: 1},
			{do: "hold", inflight: 16, before: 0, proposed: 0, want: false, wantSkip: 0, wantBack: 1},
			{do: "hold", inflight: 16, before: 0, proposed: 0, want: true, wantBack: 1},
			{do: "timeout", wantSkip: 2, wantBack: 2},
			{do: "hold", inflight: 16, want: false, wantSkip: 1, wantBack: 2},
			{do: "hold", inflight: 16, want: false, wantSkip: 0, wantBack: 2},
			{do: "hold", inflight: 16, want: true, wantBack: 2},
			{do: "timeout", wantSkip: 4, wantBack: 4},
		}},
		{"a filled hold resets the backoff", []step{
			{do: "hold", inflight: 16, want: true},
			{do: "timeout", wantSkip: 1, wantBack: 1},
			{do: "hold", inflight: 16, want: false, wantBack: 1},
			{do: "hold", inflight: 16, before: 50, proposed: 50, want: true, wantBack: 1},
			{do: "arrived", proposed: 54, want: true, wantBack: 0},
			{do: "hold", inflight: 16, before: 60, proposed: 60, want: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var g groupCommit
			for i, st := range tc.steps {
				var got bool
				switch st.do {
				case "hold":
					got = g.hold(st.inflight, st.before, st.proposed)
				case "arrived":
					got = g.arrived(st.proposed)
				case "timeout":
					g.timedOut()
					got = st.want
				}
				if got != st.want || g.skip != st.wantSkip || g.backoff != st.wantBack {
					t.Fatalf("step %d (%s): got %v skip %d backoff %d, want %v skip %d backoff %d",
						i, st.do, got, g.skip, g.backoff, st.want, st.wantSkip, st.wantBack)
				}
			}
		})
	}
	var g groupCommit
	for range 20 {
		g.timedOut()
	}
	if g.skip != groupMaxSkip || g.backoff != groupMaxSkip {
		t.Fatalf("after 20 timeouts: skip %d backoff %d, want both %d", g.skip, g.backoff, groupMaxSkip)
	}
}

// Concurrent writers on a leader with group commit: every write completes and is applied on
// every member, holds happen, and a few clients (each with one write in flight, so a hold
// cannot fill) are not held up for the delay on every Ready: the timeouts back off.
func TestGroupCommitConcurrentWriters(t *testing.T) {
	const delay = 20 * time.Millisecond
	c := newCluster(t, 3, func(cfg *Config) { cfg.GroupCommitDelay = delay })
	lead := c.leader()
	s := c.store(lead)
	write := func(clients, each int, prefix string) time.Duration {
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for w := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					name := fmt.Sprintf("%s%d-%d", prefix, w, i)
					if _, err := s.Create(tctx(t, 30*time.Second), storetest.Service(name, nil)); err != nil {
						errs <- fmt.Errorf("%s: %w", name, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	write(64, 20, "many")
	holds := func(end string) float64 { return counterValue(s.met.groupHolds.WithLabelValues(end)) }
	if holds("filled")+holds("timeout") == 0 {
		t.Fatal("64 concurrent writers: the leader never held a Ready for more proposals")
	}
	t.Logf("64 writers: holds filled %v, timed out %v", holds("filled"), holds("timeout"))

	// 8 writers, each one write at a time: once all eight are in the log, nothing more can
	// arrive until their commit, so holds time out. Without the backoff each of 400 rounds
	// would wait the delay (8 s); with it only a few do.
	timeouts := holds("timeout")
	took := write(groupSiblings, 50, "few")
	extra := holds("timeout") - timeouts
	t.Logf("8 writers x 50: %v, %v holds timed out", took.Round(time.Millisecond), extra)
	if extra > 50 {
		t.Fatalf("8 writers: %v holds timed out over 400 writes, want the backoff to keep them rare", extra)
	}
	c.waitConverged()
	for i := range 3 {
		if n := countServices(t, c.store(i)); n != 64*20+groupSiblings*50 {
			t.Fatalf("member %d has %d Services, want %d", i, n, 64*20+groupSiblings*50)
		}
	}
}

func countServices(t *testing.T, s *Store) int {
	t.Helper()
	objs, _, err := s.List(tctx(t, 10*time.Second), v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

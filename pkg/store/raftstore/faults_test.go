package raftstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

// ackLog records writes the store acknowledged.
type ackLog struct {
	mu sync.Mutex
	// guarded by mu:
	byName map[string]int64 // object name -> revision it was created at
	byRev  map[int64]string
	dupRev []string
}

func (a *ackLog) add(name string, rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if other, ok := a.byRev[rev]; ok && other != name {
		a.dupRev = append(a.dupRev, fmt.Sprintf("revision %d acknowledged for both %s and %s", rev, other, name))
	}
	a.byName[name] = rev
	a.byRev[rev] = name
}

// writers keep creating uniquely named objects through random running members until stop.
func writers(c *cluster, n int, acks *ackLog, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				run := c.running()
				if len(run) == 0 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				s := c.store(run[rand.IntN(len(run))])
				if s == nil {
					continue
				}
				name := fmt.Sprintf("w-%d-%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				o, err := s.Create(ctx, storetest.Service(name, map[string]string{"writer": strconv.Itoa(g)}))
				cancel()
				if err != nil {
					continue // unknown outcome: not acknowledged
				}
				rev, _ := strconv.ParseInt(o.GetMetadata().ResourceVersion, 10, 64)
				acks.add(name, rev)
			}
		}()
	}
	return &wg
}

// checkState verifies every running member holds the same objects and every acknowledged
// write, at the revision it was acknowledged with.
func checkState(t *testing.T, c *cluster, acks *ackLog) {
	t.Helper()
	rev := c.waitConverged()
	acks.mu.Lock()
	defer acks.mu.Unlock()
	for _, d := range acks.dupRev {
		t.Error(d)
	}
	var ref map[string]string
	for _, i := range c.running() {
		s := c.store(i)
		objs, listRev, err := s.List(tctx(t, 10*time.Second), v1.KindService, v1.Selector{})
		if err != nil {
			t.Fatalf("%s: list: %v", c.nodes[i].name, err)
		}
		if listRev != rev {
			t.Errorf("%s: list at revision %d, converged at %d", c.nodes[i].name, listRev, rev)
		}
		got := map[string]string{}
		for _, o := range objs {
			got[o.GetMetadata().Name] = o.GetMetadata().ResourceVersion
		}
		for name, r := range acks.byName {
			if got[name] != strconv.FormatInt(r, 10) {
				t.Errorf("%s: acknowledged write %s at revision %d: found %q", c.nodes[i].name, name, r, got[name])
			}
		}
		if ref == nil {
			ref = got
			continue
		}
		if len(got) != len(ref) {
			t.Errorf("%s holds %d objects, %s holds %d", c.nodes[i].name, len(got), c.nodes[c.running()[0]].name, len(ref))
		}
		for name, r := range ref {
			if got[name] != r {
				t.Errorf("%s: %s at revision %q, first member has %q", c.nodes[i].name, name, got[name], r)
			}
		}
	}
	t.Logf("%d acknowledged writes, converged at revision %d", len(acks.byName), rev)
}

func runFaults(t *testing.T, n int) {
	c := newCluster(t, n, func(cfg *Config) { cfg.SnapshotEntries = 300; cfg.CatchUpEntries = 50 })
	acks := &ackLog{byName: map[string]int64{}, byRev: map[int64]string{}}
	stop := make(chan struct{})
	wg := writers(c, 4, acks, stop)

	time.Sleep(500 * time.Millisecond)
	lead := c.leader()
	t.Logf("killing leader %s", c.nodes[lead].name)
	c.stop(lead)
	time.Sleep(time.Second)
	c.leader()
	c.restart(lead)
	time.Sleep(500 * time.Millisecond)

	lead = c.leader()
	f := (lead + 1) % n
	t.Logf("partitioning follower %s", c.nodes[f].name)
	c.net.isolate(c.store(f).ID(), c.ids())
	time.Sleep(1500 * time.Millisecond)
	c.net.heal()
	time.Sleep(500 * time.Millisecond)

	lead = c.leader()
	t.Logf("partitioning leader %s", c.nodes[lead].name)
	c.net.isolate(c.store(lead).ID(), c.ids())
	time.Sleep(1500 * time.Millisecond)
	c.net.heal()
	time.Sleep(500 * time.Millisecond)

	close(stop)
	wg.Wait()
	checkState(t, c, acks)

	t.Log("restarting the whole cluster")
	for i := range n {
		c.stop(i)
	}
	for i := range n {
		c.restart(i)
	}
	c.leader()
	checkState(t, c, acks)
	if _, err := c.store(0).Create(tctx(t, 10*time.Second), storetest.Service("after-restart", nil)); err != nil {
		t.Fatalf("write after whole-cluster restart: %v", err)
	}
}

func TestFaultsThreeNodes(t *testing.T) { runFaults(t, 3) }
func TestFaultsFiveNodes(t *testing.T)  { runFaults(t, 5) }

// A follower cut off while the log is compacted past what it has catches up by snapshot.
func TestLaggingFollowerGetsSnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 50; cfg.CatchUpEntries = 10 })
	lead := c.leader()
	f := (lead + 1) % 3
	c.net.isolate(c.store(f).ID(), c.ids())
	for i := range 120 {
		if _, err := c.store(lead).Create(tctx(t, 10*time.Second), storetest.Service(fmt.Sprintf("s%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	c.net.heal()
	c.waitConverged()
	if got := counterValue(c.store(f).met.snapshotsReceived); got < 1 {
		t.Fatalf("follower installed %v snapshots, want at least 1", got)
	}
	objs, _, err := c.store(f).List(tctx(t, 10*time.Second), v1.KindService, v1.Selector{}, store.Stale())
	if err != nil || len(objs) != 120 {
		t.Fatalf("follower lists %d objects (err %v), want 120", len(objs), err)
	}
	// A watch resumed on the follower from a revision after the snapshot works.
	rev, _ := c.store(f).Revision(tctx(t, 10*time.Second))
	ch, err := c.store(f).Watch(tctx(t, 10*time.Second), v1.KindService, rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.store(lead).Create(tctx(t, 10*time.Second), storetest.Service("after", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.Revision != rev+1 || ev.Object.GetMetadata().Name != "after" {
			t.Fatalf("event %+v, want after at %d", ev, rev+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
}

// Watches on different members see the same events at the same revisions, so a client can
// resume on another member.
func TestWatchResumesOnAnotherMember(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	a, b := c.store((lead+1)%3), c.store((lead+2)%3)
	ctx := tctx(t, 20*time.Second)
	cha, err := a.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	start, _ := a.Revision(ctx)
	for i := range 10 {
		if _, err := c.store(lead).Create(ctx, storetest.Service(fmt.Sprintf("s%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []store.Event
	for range 5 {
		seen = append(seen, <-cha)
	}
	// Resume on b after the fifth event: the rest arrives without gaps or duplicates.
	chb, err := b.Watch(ctx, "", seen[4].Revision)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		seen = append(seen, <-chb)
	}
	for i, ev := range seen {
		if ev.Revision != start+int64(i)+1 || ev.Object.GetMetadata().Name != fmt.Sprintf("s%d", i) {
			t.Fatalf("event %d: %s at %d, want s%d at %d", i, ev.Object.GetMetadata().Name, ev.Revision, i, start+int64(i)+1)
		}
	}
}

// Without a quorum, writes and linearizable reads fail with ErrUnavailable within the
// caller's deadline; stale reads still answer.
func TestNoQuorumIsUnavailable(t *testing.T) {
	c := newCluster(t, 3, nil)
	if _, err := c.store(0).Create(tctx(t, 10*time.Second), storetest.Service("web", nil)); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()
	c.stop(1)
	c.stop(2)
	s := c.store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := s.Create(ctx, storetest.Service("other", nil))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("write without quorum: err = %v, want ErrUnavailable", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	if _, err := s.Get(ctx2, v1.KindService, "web"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("linearizable read without quorum: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(tctx(t, time.Second), v1.KindService, "web", store.Stale()); err != nil {
		t.Fatalf("stale read without quorum: %v", err)
	}
}

func TestMembership(t *testing.T) {
	c := newCluster(t, 2, func(cfg *Config) {
		cfg.JoinExtra = func(req JoinRequest) map[string]string { return map[string]string{"hello": req.Name} }
	})
	// Two members: one voter and a learner (an even number of voters would only add a way
	// to lose quorum).
	roles := map[v1.RaftRole]int{}
	for _, m := range c.store(0).Members() {
		roles[m.Role]++
	}
	if roles[v1.RaftLeader] != 1 || roles[v1.RaftLearner] != 1 {
		t.Fatalf("two members: roles %v, want one leader and one learner", roles)
	}
	if c.store(1).Role() != v1.RaftLearner {
		t.Fatalf("joiner role %s, want learner", c.store(1).Role())
	}
	// A learner asking again gets its member back (a joiner that crashed before saving it).
	m, err := c.store(0).AddLearner(tctx(t, 5*time.Second), JoinRequest{Name: "n1", RaftAddress: c.nodes[1].addr})
	if err != nil || m.ID != c.store(1).ID() {
		t.Fatalf("rejoin of a learner: %v %v", m, err)
	}
	if extra := c.store(1).JoinExtra(); extra["hello"] != "n1" {
		t.Fatalf("join extra %v, want hello=n1", extra)
	}
	// A third member: both learners are promoted together.
	c.add()
	c.start(2, []string{c.nodes[0].api.URL})
	c.waitVoters(3)
	// A voter asking to join again (it lost its data) is refused until removed.
	if _, err := c.store(0).AddLearner(tctx(t, 5*time.Second), JoinRequest{Name: "n2", RaftAddress: c.nodes[2].addr}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("rejoin of a voter: err = %v, want ErrAlreadyExists", err)
	}
	// Removing a voter: the remaining two are demoted to one voter and a learner.
	if err := c.store(0).Remove(tctx(t, 10*time.Second), "n2"); err != nil {
		t.Fatal(err)
	}
	c.stop(2)
	c.waitVoters(1)
	if _, err := c.store(1).Create(tctx(t, 10*time.Second), storetest.Service("web", nil)); err != nil {
		t.Fatal(err)
	}
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// A member reopened from its file has every write, the same revision, and continues from it,
// whether the log was compacted behind a snapshot or not.
func TestRestartRecovers(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.SnapshotEntries = 20; cfg.CatchUpEntries = 5 })
	for i := range 55 {
		if _, err := c.store(0).Create(tctx(t, 10*time.Second), storetest.Service(fmt.Sprintf("s%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := c.store(0).Revision(tctx(t, 5*time.Second))
	if c.store(0).compactIndex == 0 {
		t.Fatal("log was never compacted")
	}
	for range 2 {
		c.stop(0)
		c.restart(0)
		c.leader()
		rev, err := c.store(0).Revision(tctx(t, 10*time.Second))
		if err != nil || rev != before {
			t.Fatalf("revision after restart %d (%v), want %d", rev, err, before)
		}
		objs, _, err := c.store(0).List(tctx(t, 10*time.Second), v1.KindService, v1.Selector{})
		if err != nil || len(objs) != 55 {
			t.Fatalf("%d objects after restart (%v), want 55", len(objs), err)
		}
	}
	o, err := c.store(0).Create(tctx(t, 10*time.Second), storetest.Service("after", nil))
	if err != nil || o.GetMetadata().ResourceVersion != strconv.FormatInt(before+1, 10) {
		t.Fatalf("write after restart: %v %v, want revision %d", o, err, before+1)
	}
}

func TestAdvertiseAddress(t *testing.T) {
	for _, tt := range []struct{ advertise, bound, want string }{
		{"10.0.0.5:7481", "[::]:7481", "10.0.0.5:7481"},
		{"", "127.0.0.1:7481", "127.0.0.1:7481"},
		{"", "[::]:7481", net.JoinHostPort(guessHostIP(), "7481")},
		{"", "0.0.0.0:9000", net.JoinHostPort(guessHostIP(), "9000")},
		{":7481", "[::]:7481", net.JoinHostPort(guessHostIP(), "7481")},
		{"node1.lan:0", "[::]:7481", "node1.lan:7481"},
	} {
		if got := advertiseAddress(tt.advertise, tt.bound); got != tt.want {
			t.Errorf("advertiseAddress(%q, %q) = %q, want %q", tt.advertise, tt.bound, got, tt.want)
		}
	}
}

// A storage failure stops the member's raft loop and says so; closing and opening it again on
// the same data dir brings it back with everything it had.
func TestReopenAfterStorageFailure(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	f := (lead + 1) % 3
	if _, err := c.store(lead).Create(tctx(t, 10*time.Second), storetest.Service("before", nil)); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()
	// Pull the file from under the follower, as a failing disk would.
	_ = c.store(f).db.Close()
	if _, err := c.store(lead).Create(tctx(t, 10*time.Second), storetest.Service("during", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.store(f).Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not report its storage failure")
	}
	if c.store(f).Err() == nil {
		t.Fatal("Err() is nil after a failure")
	}
	if _, err := c.store(f).Get(tctx(t, time.Second), v1.KindService, "before"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("read on a failed member: err = %v, want ErrUnavailable", err)
	}
	c.stop(f)
	c.restart(f)
	c.waitConverged()
	for _, name := range []string{"before", "during"} {
		if _, err := c.store(f).Get(tctx(t, 10*time.Second), v1.KindService, name); err != nil {
			t.Fatalf("after reopening: %s: %v", name, err)
		}
	}
}

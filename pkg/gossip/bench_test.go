package gossip

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/gossip/gossiptest"
	"github.com/constellation-sh/constellation/pkg/observed"
)

var (
	stressFor = flag.Duration("gossip.stress", 3*time.Second,
		"how long TestNoFalseDeathUnderCPUStress keeps every core busy (make chaos: 10s)")
	simNodes         = flag.Int("gossip.simnodes", 50, "cluster size of BenchmarkSimulatedDeath")
	stressGoroutines = flag.Int("gossip.stress.goroutines", -1,
		"spinning goroutines in the test process during TestNoFalseDeathUnderCPUStress (-1: one per CPU)")
	stressProcs = flag.Int("gossip.stress.procs", 0,
		"busy shell loops outside the test process during TestNoFalseDeathUnderCPUStress (-1: one per CPU; make chaos: -1)")
)

// waitNotAlive blocks until every view marks name not alive, and returns when that happened
// (the latest of them). It gives up after timeout.
func waitNotAlive(views []*observed.Set, name string, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	var last time.Time
	for _, v := range views {
		for {
			ch := v.Changed()
			if n, ok := nodeOf(v, name); ok && !n.Alive {
				if now := time.Now(); now.After(last) {
					last = now
				}
				break
			}
			select {
			case <-ch:
			case <-deadline:
				return time.Time{}, fmt.Errorf("%s still alive in a view after %s", name, timeout)
			}
		}
	}
	return last, nil
}

type durations []time.Duration

func (d durations) stats() (lo, med, hi time.Duration) {
	s := append(durations(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[0], s[len(s)/2], s[len(s)-1]
}

func (d durations) report(b *testing.B, what string) {
	lo, med, hi := d.stats()
	b.ReportMetric(float64(lo.Milliseconds()), "min-ms")
	b.ReportMetric(float64(med.Milliseconds()), "median-ms")
	b.ReportMetric(float64(hi.Milliseconds()), "max-ms")
	b.ReportMetric(0, "ns/op") // wall time per op includes setup: meaningless here
	fmt.Fprintf(os.Stderr, "%s: %d trials: min %s, median %s, max %s\n", what, len(d), lo, med, hi)
}

// BenchmarkFailoverLoopback measures, on 3 nodes over real UDP/TCP on 127.0.0.1 with the default
// configuration, the time from killing one node (Shutdown without Leave, which closes its
// sockets as SIGKILL would) until both survivors' views mark it not alive. Each iteration is a
// fresh cluster. Run with -benchtime=20x.
func BenchmarkFailoverLoopback(b *testing.B) {
	var d durations
	for range b.N {
		nodes := []*tnode{startLoopback(b, "a", nil), startLoopback(b, "b", nil), startLoopback(b, "c", nil)}
		joinAll(b, nodes)
		for _, n := range nodes {
			eventually(b, 5*time.Second, "cluster formed", func() error {
				if got := aliveNames(n.set); got != "a,b,c" {
					return fmt.Errorf("alive %q", got)
				}
				return nil
			})
		}
		// Let the probe schedule settle into a random phase relative to the kill.
		time.Sleep(time.Second + rand.N(600*time.Millisecond))
		start := time.Now()
		_ = nodes[2].g.Shutdown()
		at, err := waitNotAlive([]*observed.Set{nodes[0].set, nodes[1].set}, "c", 20*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		d = append(d, at.Sub(start))
		for _, n := range nodes {
			_ = n.g.Shutdown()
		}
	}
	d.report(b, "failover, 3 nodes, loopback")
}

// BenchmarkSimulatedDeath runs -gossip.simnodes nodes (default 50) on an in-memory network in
// one process, measures idle traffic (packets sent per node per second), then per iteration
// kills one node and measures the time until every survivor's view marks it not alive and the
// traffic meanwhile. Run with -benchtime=10x.
func BenchmarkSimulatedDeath(b *testing.B) {
	n := *simNodes
	nw := gossiptest.NewNetwork()
	nodes := make([]*tnode, n)
	for i := range nodes {
		nodes[i] = startMem(b, nw, fmt.Sprintf("n%02d", i), nil)
		nodes[i].g.SetLocalReplicas([]observed.Replica{replica(nodes[i].name, "web", int32(i), v1.ReplicaRunning)})
	}
	joinAll(b, nodes)
	for _, nd := range nodes {
		// A busy machine (other tests, 50 nodes in one process) can cause a false suspicion that
		// is refuted a moment later: give the cluster time to settle.
		eventually(b, 90*time.Second, "cluster formed", func() error {
			if got := len(nd.set.Replicas()); got != n {
				return fmt.Errorf("%s sees %d replicas", nd.name, got)
			}
			return nil
		})
	}
	sent := func(ns []*tnode) (pkts, bytes, streams int64) {
		for _, nd := range ns {
			pkts += nd.mem.PacketsSent.Load()
			bytes += nd.mem.BytesSent.Load()
			streams += nd.mem.StreamsOpened.Load()
		}
		return
	}
	// Idle traffic over 5 s.
	time.Sleep(2 * time.Second)
	p0, by0, s0 := sent(nodes)
	idle := 10 * time.Second
	time.Sleep(idle)
	p1, by1, s1 := sent(nodes)
	perNode := func(x int64, nn int, d time.Duration) float64 { return float64(x) / float64(nn) / d.Seconds() }
	fmt.Fprintf(os.Stderr, "simulation, %d nodes, idle: %.1f packets/node/s, %.0f bytes/node/s, %.2f TCP streams/node/s\n",
		n, perNode(p1-p0, n, idle), perNode(by1-by0, n, idle), perNode(s1-s0, n, idle))

	// One replica change: time until every node shows it.
	var prop durations
	for i := range 5 {
		origin := nodes[rand.N(n)]
		r := replica(origin.name, "web", int32(origin.name[1]-'0')*10+int32(origin.name[2]-'0'), v1.ReplicaRunning)
		r.Message = fmt.Sprintf("change %d", i)
		start := time.Now()
		origin.g.SetLocalReplicas([]observed.Replica{r})
		eventually(b, 30*time.Second, "change propagated", func() error {
			for _, nd := range nodes {
				rs := nd.set.NodeReplicas(origin.name)
				if len(rs) != 1 || rs[0].Message != r.Message {
					return fmt.Errorf("%s has not seen it", nd.name)
				}
			}
			return nil
		})
		prop = append(prop, time.Since(start))
	}
	lo, med, hi := prop.stats()
	fmt.Fprintf(os.Stderr, "simulation, %d nodes: one replica change seen by every node in min %s, median %s, max %s (20 ms polling)\n", n, lo, med, hi)

	var d durations
	var busyRate []float64
	alive := append([]*tnode(nil), nodes...)
	b.ResetTimer()
	for range b.N {
		if len(alive) < 3 {
			b.Fatal("ran out of nodes: lower -benchtime")
		}
		vi := rand.N(len(alive))
		victim := alive[vi]
		alive = append(alive[:vi:vi], alive[vi+1:]...)
		views := make([]*observed.Set, len(alive))
		for i, nd := range alive {
			views[i] = nd.set
		}
		q0, _, _ := sent(alive)
		start := time.Now()
		_ = victim.g.Shutdown()
		at, err := waitNotAlive(views, victim.name, 60*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		q1, _, _ := sent(alive)
		d = append(d, at.Sub(start))
		busyRate = append(busyRate, perNode(q1-q0, len(alive), at.Sub(start)))
		time.Sleep(500 * time.Millisecond)
	}
	b.StopTimer()
	sort.Float64s(busyRate)
	b.ReportMetric(perNode(p1-p0, n, idle), "idle-pkts/node/s")
	b.ReportMetric(busyRate[len(busyRate)/2], "detect-pkts/node/s")
	fmt.Fprintf(os.Stderr, "simulation, %d nodes: during detection %.1f packets/node/s (median)\n", n, busyRate[len(busyRate)/2])
	d.report(b, fmt.Sprintf("simulation, %d nodes, time for every survivor to learn a death", n))
}

// TestInMemoryClusterDeath is a small version of the simulation that runs in the default tests.
func TestInMemoryClusterDeath(t *testing.T) {
	nw := gossiptest.NewNetwork()
	nodes := make([]*tnode, 10)
	for i := range nodes {
		nodes[i] = startMem(t, nw, fmt.Sprintf("n%02d", i), nil)
		nodes[i].g.SetLocalReplicas([]observed.Replica{replica(nodes[i].name, "web", int32(i), v1.ReplicaRunning)})
	}
	joinAll(t, nodes)
	converged(t, nodes, 20*time.Second)
	if got := len(nodes[0].set.Replicas()); got != 10 {
		t.Fatalf("%d replicas", got)
	}
	_ = nodes[4].g.Shutdown()
	var views []*observed.Set
	for i, nd := range nodes {
		if i != 4 {
			views = append(views, nd.set)
		}
	}
	if _, err := waitNotAlive(views, "n04", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if got := len(v.Replicas()); got != 9 {
			t.Fatalf("%d replicas after the death", got)
		}
	}
}

// TestNoFalseDeathUnderCPUStress keeps both cores busy (one spinning goroutine per CPU in this
// process, where all three nodes run) while a 3-node cluster runs over loopback and replicas
// keep changing; no node may be declared dead. The default is a 3 s run; make chaos runs
// -gossip.stress=10s -gossip.stress.procs=-1, which adds one busy shell loop per CPU outside the
// process (twice as many busy threads as cores).
func TestNoFalseDeathUnderCPUStress(t *testing.T) {
	nodes := startCluster(t, "a", "b", "c")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ng, np := *stressGoroutines, *stressProcs
	if ng < 0 {
		ng = runtime.NumCPU()
	}
	if np < 0 {
		np = runtime.NumCPU()
	}
	busy(ng, stop, &wg)
	var procs []*exec.Cmd
	if sh, err := exec.LookPath("sh"); err == nil {
		for range np {
			cmd := exec.Command(sh, "-c", "while :; do :; done")
			if err := cmd.Start(); err == nil {
				procs = append(procs, cmd)
			}
		}
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	end := time.Now().Add(*stressFor)
	i := 0
	for time.Now().Before(end) {
		i++
		st := v1.ReplicaRunning
		if i%2 == 0 {
			st = v1.ReplicaExited
		}
		nodes[i%3].g.SetLocalReplicas([]observed.Replica{replica(nodes[i%3].name, "web", 0, st)})
		time.Sleep(50 * time.Millisecond)
		for _, n := range nodes {
			if got := aliveNames(n.set); got != "a,b,c" {
				close(stop)
				wg.Wait()
				t.Fatalf("after %s of stress, %s sees alive %q", *stressFor-time.Until(end), n.name, got)
			}
		}
	}
	close(stop)
	wg.Wait()
	for _, n := range nodes {
		if d := counter(t, n.reg, "constellation_gossip_member_events_total", map[string]string{"event": "dead"}); d != 0 {
			t.Fatalf("%s counted %v deaths", n.name, d)
		}
		t.Logf("%s: Lifeguard health score %d", n.name, n.g.HealthScore())
	}
	converged(t, nodes, 5*time.Second)
}

// Command bench-replicaset measures Redis failover under the ReplicaSet controller, with real
// redis-server and redis-sentinel processes (Debian's, installed by hack/redis.sh) on loopback
// addresses and the real controller (controllers/replicaset, engine pkg/replicaset/redis) over
// an in-memory store. Node i is the pair (server 127.0.1.<i+1>, sentinel 127.0.2.<i+1>); its
// Service status (replica virtual IPs, replica states) is written by the bench as the status and
// mesh controllers would.
//
// Each trial kills the current master's node (SIGKILL of its server and sentinel, its replica
// marked exited as the status controller would after gossip's verdict) and measures from the kill:
//
//   - elected: a surviving member's own ROLE says master (Sentinel promoted it);
//   - status: the store's status.primary names it and PrimaryAgreed is True;
//   - route: a client that follows status (what <rs>-primary does: the name resolves to the
//     agreed primary only) completes a SET on it.
//
// A writer SETs through that route throughout and the bench reports acknowledged writes missing
// from the final master, by the member that acknowledged them. The node then returns (its server
// restarts empty, no persistence) and the next trial starts once every member is healthy again.
//
// Not measured here: gossip's detection of a dead node (the bench marks the replica exited at
// the kill) and the mesh proxy's hop (docs/performance.md, "Mesh"). The machine is shared.
//
//	go run ./hack/bench-replicaset [-trials 10] [-down-after 3s] [-nodes 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	rsctl "github.com/constellation-sh/constellation/controllers/replicaset"
	"github.com/constellation-sh/constellation/pkg/replicaset"
	redisengine "github.com/constellation-sh/constellation/pkg/replicaset/redis"
	"github.com/constellation-sh/constellation/pkg/replicaset/redis/redistest"
	"github.com/constellation-sh/constellation/pkg/store"
)

func main() {
	trials := flag.Int("trials", 10, "failovers to measure")
	downAfter := flag.Duration("down-after", 3*time.Second, "Sentinel down-after-milliseconds")
	nodes := flag.Int("nodes", 3, "nodes (one server and one sentinel each)")
	verbose := flag.Bool("v", false, "controller and engine logs on stderr")
	flag.Parse()
	if err := run(*trials, *downAfter, *nodes, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench-replicaset:", err)
		os.Exit(1)
	}
}

func run(trials int, downAfter time.Duration, n int, verbose bool) error {
	bins, err := redistest.Find()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-rs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port, err := redistest.FreePort()
	if err != nil {
		return err
	}
	sentPort, err := redistest.FreePort()
	if err != nil {
		return err
	}
	set := &redistest.Set{}
	defer set.Stop()
	for i := range n {
		s, err := redistest.StartServerAt(bins, dir, ipOf(1, i), port)
		if err != nil {
			return err
		}
		set.Servers = append(set.Servers, s)
		q, err := redistest.StartSentinelAt(bins, dir, ipOf(2, i), sentPort)
		if err != nil {
			return err
		}
		set.Sentinels = append(set.Sentinels, q)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &bench{st: store.NewMemory(), set: set, up: make([]bool, n), port: port, sentPort: sentPort}
	for i := range b.up {
		b.up[i] = true
	}
	reps := int32(n)
	mk := func(o v1.Object) error { _, err := b.st.Create(ctx, o); return err }
	if err := mk(&v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "redis"},
		Spec: v1.ServiceSpec{Image: "redis", Replicas: &reps, Ports: []v1.ServicePort{{Name: "redis", ContainerPort: int32(port)}}}}); err != nil {
		return err
	}
	for i := range n {
		if err := mk(&v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: "n" + strconv.Itoa(i)}}); err != nil {
			return err
		}
	}
	if err := b.writeStatus(ctx, "redis", 1, n); err != nil {
		return err
	}
	logOut := io.Discard
	if verbose {
		logOut = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	ctl, err := rsctl.New(rsctl.Config{Store: b.st, Logger: log, Poll: 500 * time.Millisecond,
		Engines: map[v1.Engine]rsctl.EngineFactory{v1.EngineRedis: func(o replicaset.Options) (replicaset.Engine, error) {
			o.Timeout = 500 * time.Millisecond
			return redisengine.NewEngine(o)
		}},
		MemberHost: func(svc string, i int) string {
			if svc == "cache-sentinel" {
				return ipOf(2, i)
			}
			return ipOf(1, i)
		}})
	if err != nil {
		return err
	}
	go ctl.Run(ctx)
	if err := mk(&v1.ReplicaSet{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindReplicaSet}, Metadata: v1.ObjectMeta{Name: "cache"},
		Spec: v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"redis"},
			Redis: &v1.RedisReplicaSet{MasterName: "cache", Sentinel: "cache-sentinel", SentinelPort: int32(sentPort),
				DownAfter: &v1.Duration{Duration: downAfter}, FailoverTimeout: &v1.Duration{Duration: 2 * downAfter}}}}); err != nil {
		return err
	}
	// The sentinel Service appears (owned by the controller): give it status.
	if err := waitFor(ctx, 30*time.Second, "sentinel Service", func() bool {
		_, err := b.st.Get(ctx, v1.KindService, "cache-sentinel")
		return err == nil
	}); err != nil {
		return err
	}
	if err := b.writeStatus(ctx, "cache-sentinel", 2, n); err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, "bootstrap (every member healthy)", func() bool {
		rs, err := b.status(ctx)
		return err == nil && ready(rs) && rs.Status.Primary == "redis-0"
	}); err != nil {
		return err
	}

	w := &writer{b: b, acked: map[string]string{}}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(wctx) }()

	fmt.Printf("bench-replicaset: %d nodes (redis-server + redis-sentinel each, %s), down-after %s, failover-timeout %s, %d trials, GOMAXPROCS %d, %d CPUs (shared machine)\n",
		n, serverVersion(), downAfter, 2*downAfter, trials, runtime.GOMAXPROCS(0), runtime.NumCPU())
	var elected, updated, routed []time.Duration
	for t := 1; t <= trials; t++ {
		// Settle: no failover just happened (Sentinel refuses a new one within failover-timeout of
		// the last on the same master; two trials back to back would measure that, not failover).
		time.Sleep(2 * downAfter)
		rs, err := b.status(ctx)
		if err != nil {
			return err
		}
		old := rs.Status.Primary
		oi := index(old)
		wasReplica := map[int]bool{}
		for i, s := range set.Servers {
			wasReplica[i] = i != oi && roleOf(ctx, s.Addr()) == "slave"
		}
		start := time.Now()
		set.Servers[oi].Kill()
		set.Sentinels[oi].Kill()
		if err := b.setUp(ctx, oi, false, n); err != nil {
			return err
		}
		var te, ts, tr time.Duration
		newName := ""
		deadline := start.Add(60 * time.Second)
		for (te == 0 || ts == 0 || tr == 0) && time.Now().Before(deadline) {
			if te == 0 {
				for i, s := range set.Servers {
					if wasReplica[i] && roleOf(ctx, s.Addr()) == "master" {
						te, newName = time.Since(start), "redis-"+strconv.Itoa(i)
					}
				}
			}
			if ts == 0 {
				if rs, err := b.status(ctx); err == nil && rs.Status.Primary != old && agreed(rs) {
					ts = time.Since(start)
				}
			}
			if tr == 0 {
				if at, who := w.lastAckAfter(start); !at.IsZero() && who != old {
					tr = at.Sub(start)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if te == 0 || ts == 0 || tr == 0 {
			return fmt.Errorf("trial %d: no complete failover within 60s (elected %s status %s route %s)", t, te, ts, tr)
		}
		elected, updated, routed = append(elected, te), append(updated, ts), append(routed, tr)
		fmt.Printf("  trial %2d: %s → %s  elected %6.2fs  status %6.2fs  route %6.2fs\n", t, old, newName, te.Seconds(), ts.Seconds(), tr.Seconds())
		// The node returns.
		if err := set.Servers[oi].Start(); err != nil {
			return err
		}
		if err := set.Sentinels[oi].Start(); err != nil {
			return err
		}
		if err := b.setUp(ctx, oi, true, n); err != nil {
			return err
		}
		if err := waitFor(ctx, 90*time.Second, "node back, every member healthy", func() bool {
			rs, err := b.status(ctx)
			return err == nil && ready(rs)
		}); err != nil {
			return err
		}
	}
	wcancel()
	wg.Wait()
	rs, err := b.status(ctx)
	if err != nil {
		return err
	}
	final := set.Servers[index(rs.Status.Primary)].Addr()
	lost, total, err := w.lost(ctx, final)
	if err != nil {
		return err
	}
	fmt.Printf("kill → new master elected  min %5.2fs  median %5.2fs  max %5.2fs\n", stats(elected)...)
	fmt.Printf("kill → status updated      min %5.2fs  median %5.2fs  max %5.2fs\n", stats(updated)...)
	fmt.Printf("kill → route follows       min %5.2fs  median %5.2fs  max %5.2fs\n", stats(routed)...)
	fmt.Printf("writes acknowledged through the route: %d (%d attempts failed); missing on the final master %s: %d\n",
		total, w.failed, rs.Status.Primary, lost.total)
	for _, l := range lost.byTrial {
		fmt.Printf("  lost %d acknowledged by %s in its last %.0f ms as master (it was killed right after)\n", l.n, l.member, l.window.Seconds()*1000)
	}
	if lost.other > 0 {
		fmt.Printf("  lost %d acknowledged by a master that was NOT killed right after: a bug\n", lost.other)
	}
	return nil
}

func stats(ds []time.Duration) []any {
	s := slices.Clone(ds)
	slices.Sort(s)
	return []any{s[0].Seconds(), s[len(s)/2].Seconds(), s[len(s)-1].Seconds()}
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

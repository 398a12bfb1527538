// Command bench-controllers measures what the cluster-wide controllers (scheduler and status)
// cost at 250 to 1000 Services, on the memory store with an in-memory observed view, in this
// process (no Docker, no network):
//
//   - change: one gossip change in a converged cluster of N Services × 3 replicas on 3 nodes →
//     time until every controller is idle again, for a replica's health flapping (touches one
//     Service) and for a node's observed state changing (touches every Service: the worst
//     case). Printed next to the old per-reconcile full-list path (Reconcile outside Run reads
//     the store, as every reconcile did before the informer cache) measured in the same run.
//
//   - idle: CPU used over -idle by the controllers of one agent without a runtime holding
//     -idle-services Services that cannot be placed, and of a converged cluster of as many
//     placeable ones (getrusage of this process).
//
//   - converge: -converge Services × 3 replicas on -nodes simulated nodes, from empty, until every
//     Service has 3 ready replicas and its rollout is complete. A simulated node reports each
//     replica assigned to it Running and Healthy as soon as the assignment is written.
//
// It prints figures; it asserts nothing. Run it with:
//
//	go run ./hack/bench-controllers [-sizes 250,500,1000] [-idle 10s] [-idle-services 1000] [-converge 1000] [-nodes 5] [-old=true] [-cpuprofile FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/controllers/status"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

func main() {
	sizes := flag.String("sizes", "250,500,1000", "Service counts for the change benchmark")
	idle := flag.Duration("idle", 10*time.Second, "idle window")
	idleN := flag.Int("idle-services", 1000, "Services in the idle measurement")
	convN := flag.Int("converge", 1000, "Services in the convergence run (0: skip)")
	nodes := flag.Int("nodes", 5, "simulated nodes in the convergence run")
	old := flag.Bool("old", true, "also time the old per-reconcile full-list path")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.StringVar(&changeProfile, "change-cpuprofile", "", "write a CPU profile of each node-change pass to this file (suffixed .N)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "-sizes:", err)
			os.Exit(2)
		}
		ns = append(ns, n)
	}

	fmt.Println("== one gossip change in a converged cluster (3 nodes, 3 replicas per Service) ==")
	fmt.Printf("%-9s %-20s %-40s %-26s %s\n", "services", "replica flap → idle", "node change → idle", "old path (scheduler only)", "new/old")
	for _, n := range ns {
		benchChange(n, *old)
	}
	if *idleN > 0 {
		fmt.Printf("\n== idle: %d Services, controllers only, %s window ==\n", *idleN, *idle)
		benchIdle(*idleN, *idle, false)
		benchIdle(*idleN, *idle, true)
	}
	if *convN > 0 {
		fmt.Printf("\n== converge from empty: %d Services × 3 replicas on %d simulated nodes ==\n", *convN, *nodes)
		benchConverge(*convN, *nodes)
	}
}

// cluster is a memory store, a view, simulated nodes and the two controllers running.
type cluster struct {
	st      *store.Memory
	view    *observed.Set
	reg     *prometheus.Registry
	sched   *scheduler.Scheduler
	watch   *ctrl.Cache[*v1.Service] // the benchmark's own view of the Services
	cancel  context.CancelFunc
	stopped sync.WaitGroup
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newCluster(nodeNames []string, runtimeless bool) *cluster {
	c := &cluster{st: store.NewMemory(store.MemoryConfig{History: 1 << 20}), view: observed.NewSet(), reg: prometheus.NewRegistry()}
	ctx := context.Background()
	for _, name := range nodeNames {
		o, err := c.st.Create(ctx, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: name}})
		must(err)
		n := o.(*v1.Node)
		n.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: v1.ReasonNodeAlive}}
		_, err = c.st.UpdateStatus(ctx, n)
		must(err)
		on := observed.Node{Name: name, Alive: true, State: "alive", Advertise: "10.0.0.1"}
		if runtimeless {
			on.Labels = map[string]string{observed.LabelRuntime: observed.RuntimeNone}
		}
		c.view.SetNode(on)
	}
	return c
}

func (c *cluster) createServices(n int) {
	ctx := context.Background()
	three := int32(3)
	for i := range n {
		_, err := c.st.Create(ctx, &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
			Metadata: v1.ObjectMeta{Name: fmt.Sprintf("s%04d", i)}, Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &three}})
		must(err)
	}
}

// start runs the scheduler and the status controller as the agent wires them.
//
// nodeResync is the status controller's Node resync: the agent's 5 s for the idle figures; the
// change benchmark sets it long, as its few periodic reconciles would read as the end of the
// change.
func (c *cluster) start(nodeResync time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	lm := ctrl.NewMetrics(c.reg)
	sched, err := scheduler.New(scheduler.Config{Store: c.st, View: c.view, Logger: quiet(), LoopMetrics: lm})
	must(err)
	c.sched = sched
	c.watch = ctrl.NewCache(c.st, v1.KindService, ctrl.CacheConfig[*v1.Service]{Logger: quiet()})
	go c.watch.Run(ctx)
	stc, err := status.New(status.Config{Store: c.st, View: c.view, SpecHash: spechash.Current,
		Resync: nodeResync, Logger: quiet(), LoopMetrics: lm})
	must(err)
	for _, run := range []func(context.Context){sched.Run, stc.Run} {
		c.stopped.Add(1)
		go func() { defer c.stopped.Done(); run(ctx) }()
	}
}

func (c *cluster) stop() {
	c.cancel()
	c.stopped.Wait()
	_ = c.st.Close()
}

// reconciles is the number of reconciles finished by every loop so far.
func (c *cluster) reconciles() float64 {
	var sum float64
	for _, n := range c.reconcilesBy() {
		sum += n
	}
	return sum
}

// reconcilesBy is reconciles by controller and outcome.
func (c *cluster) reconcilesBy() map[string]float64 {
	mfs, err := c.reg.Gather()
	must(err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "constellation_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var k []string
			for _, l := range m.GetLabel() {
				k = append(k, l.GetValue())
			}
			out[strings.Join(k, "/")] += m.GetCounter().GetValue()
		}
	}
	return out
}

func sub(a, b map[string]float64) string {
	var parts []string
	for k, v := range a {
		if d := v - b[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, d))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// settle waits until no reconcile has finished for quietFor, and returns when the last one
// finished and how many finished since the call.
func (c *cluster) settle(quietFor time.Duration) (last time.Time, n float64) {
	return c.settleFrom(c.reconciles(), time.Now(), quietFor)
}

// settleFrom is settle counting from n0 reconciles at t0 (taken before a change is made, so
// that reconciles finished before the first poll still count). The time of the last reconcile
// is known to one poll, a few milliseconds.
func (c *cluster) settleFrom(n0 float64, t0 time.Time, quietFor time.Duration) (last time.Time, n float64) {
	prev, last := n0, t0
	for time.Since(last) < quietFor {
		time.Sleep(2 * time.Millisecond)
		if cur := c.reconciles(); cur != prev {
			prev, last = cur, time.Now()
		}
	}
	return last, prev - n0
}

// simulate plays every node's runtime: each replica assigned to a node is reported Running and
// Healthy with the assignment's spec hash, as soon as the assignment is in the store.
func (c *cluster) simulate(ctx context.Context) {
	type key struct {
		svc   string
		index int32
	}
	perNode := map[string]map[key]observed.Replica{}
	placed := map[string][]v1.Assignment{}
	go ctrl.ListWatch(ctx, c.st, v1.KindService, nil, func(ev store.Event) {
		svc := ev.Object.(*v1.Service)
		name := svc.Metadata.Name
		if ev.Type != store.Deleted && slices.Equal(placed[name], svc.Status.Assignments) {
			return // a status write without a placement change: nothing for a node to do
		}
		dirty := map[string]bool{}
		for _, a := range placed[name] {
			delete(perNode[a.Node], key{name, a.Index})
			dirty[a.Node] = true
		}
		placed[name] = nil
		if ev.Type != store.Deleted {
			placed[name] = svc.Status.Assignments
			for _, a := range svc.Status.Assignments {
				if perNode[a.Node] == nil {
					perNode[a.Node] = map[key]observed.Replica{}
				}
				perNode[a.Node][key{name, a.Index}] = observed.Replica{Service: name, Index: a.Index, Node: a.Node,
					SpecHash: a.SpecHash, State: v1.ReplicaRunning, Health: v1.HealthHealthy, ContainerID: fmt.Sprintf("%s-%d", name, a.Index)}
				dirty[a.Node] = true
			}
		}
		for node := range dirty {
			rs := make([]observed.Replica, 0, len(perNode[node]))
			for _, r := range perNode[node] {
				rs = append(rs, r)
			}
			c.view.SetNodeReplicas(node, rs)
		}
	})
}

// converged counts Services with every replica ready and the rollout complete. It reads a cache
// of its own (listing the store every 100 ms would cost as much as the controllers).
func (c *cluster) converged() int {
	n := 0
	for _, s := range c.watch.List() {
		p := v1.FindCondition(s.Status.Conditions, v1.ServiceProgressing)
		if s.Status.ReadyReplicas == 3 && len(s.Status.Assignments) == 3 && p != nil && p.Reason == v1.ReasonRolloutComplete {
			n++
		}
	}
	return n
}

func (c *cluster) waitConverged(want int, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		if c.converged() == want {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), false
}

func benchChange(n int, old bool) {
	c := newCluster([]string{"n1", "n2", "n3"}, false)
	c.createServices(n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.simulate(ctx)
	c.start(time.Hour)
	defer c.stop()
	if _, ok := c.waitConverged(n, 5*time.Minute); !ok {
		fmt.Printf("%-9d did not converge\n", n)
		return
	}
	c.settle(time.Second)

	// A replica's health flaps: one node republishes its replicas with one of them unhealthy.
	flap := func(health v1.Health) time.Duration {
		rs := c.view.NodeReplicas("n1")
		rs[0].Health = health
		n0, t0 := c.reconciles(), time.Now()
		c.view.SetNodeReplicas("n1", rs)
		last, _ := c.settleFrom(n0, t0, 1500*time.Millisecond)
		return last.Sub(t0)
	}
	d1 := flap(v1.HealthUnhealthy)
	flap(v1.HealthHealthy)

	// A node's observed state changes (here its agent version, as after an upgrade): every
	// Service may move, so every Service is planned again.
	// What the polling of settleFrom costs by itself, to subtract from the pass's CPU.
	pc0 := cpuTime()
	_, idleN := c.settleFrom(c.reconciles(), time.Now(), 1500*time.Millisecond)
	pollCPU := cpuTime() - pc0
	if idleN > 0 {
		pollCPU = 0 // not quiet: do not subtract what was not only polling
	}

	if changeProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", changeProfile, n))
		must(err)
		must(pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	n0, t0, cpu0 := c.reconciles(), time.Now(), cpuTime()
	c.view.SetNode(observed.Node{Name: "n2", Alive: true, State: "alive", Advertise: "10.0.0.1", Version: "v2"})
	last, count := c.settleFrom(n0, t0, 1500*time.Millisecond)
	d2 := last.Sub(t0)
	// CPU of the whole pass, less this benchmark's polling (measured alone just before): what a
	// resync of every Service costs too.
	cpu := max(cpuTime()-cpu0-pollCPU, 0)

	oldCol, ratio := "-", "-"
	if old {
		// The old path: what the scheduler did for one view change before the cache, N
		// reconciles that each list and decode every Service and Node.
		s, err := scheduler.New(scheduler.Config{Store: c.st, View: c.view, Logger: quiet()})
		must(err)
		// Each of those reconciles costs the same (it decodes the whole store), so a sample of
		// them is timed and scaled to N: the whole pass takes minutes at 1000.
		sample := min(n, oldSample)
		t0 := time.Now()
		for i := range sample {
			_, err := s.Reconcile(context.Background(), fmt.Sprintf("s%04d", i))
			must(err)
		}
		od := time.Duration(float64(time.Since(t0)) * float64(n) / float64(sample))
		oldCol = fmt.Sprintf("%.3f s", od.Seconds())
		if sample < n {
			oldCol = fmt.Sprintf("%.2f s (from %d)", od.Seconds(), sample)
		}
		ratio = fmt.Sprintf("%.3f (%.0fx faster)", d2.Seconds()/od.Seconds(), od.Seconds()/d2.Seconds())
	}
	fmt.Printf("%-9d %-20s %-40s %-26s %s\n", n, fmt.Sprintf("%.3f s", d1.Seconds()),
		fmt.Sprintf("%.3f s (%.0f reconciles, CPU %.3f s)", d2.Seconds(), count, cpu.Seconds()), oldCol, ratio)
}

// changeProfile is -change-cpuprofile.
var changeProfile string

// oldSample is how many reconciles of the old path are timed.
const oldSample = 100

func cpuTime() time.Duration {
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchIdle(n int, window time.Duration, placeable bool) {
	var c *cluster
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if placeable {
		c = newCluster([]string{"n1", "n2", "n3"}, false)
		c.createServices(n)
		c.simulate(ctx)
	} else {
		// One agent without Docker: its node takes no replica, every Service is Unschedulable.
		c = newCluster([]string{"n1"}, true)
		c.createServices(n)
	}
	c.start(5 * time.Second)
	defer c.stop()
	if placeable {
		if _, ok := c.waitConverged(n, 5*time.Minute); !ok {
			fmt.Println("placeable: did not converge")
			return
		}
	}
	c.settle(2 * time.Second)
	before, by0 := cpuTime(), c.reconcilesBy()
	time.Sleep(window)
	used, by := cpuTime()-before, c.reconcilesBy()
	what := "unplaceable (agent without a runtime)"
	if placeable {
		what = "placeable, converged on 3 nodes"
	}
	fmt.Printf("%-40s CPU %v in %v = %.3f%% of a core; reconciles: %s\n", what, used.Round(time.Millisecond), window,
		100*used.Seconds()/window.Seconds(), sub(by, by0))
}

func benchConverge(n, nodes int) {
	var names []string
	for i := range nodes {
		names = append(names, fmt.Sprintf("n%d", i+1))
	}
	c := newCluster(names, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.simulate(ctx)
	c.start(5 * time.Second)
	defer c.stop()
	cpu0 := cpuTime()
	t0 := time.Now()
	c.createServices(n)
	created := time.Since(t0)
	d, ok := c.waitConverged(n, 2*time.Minute)
	d += created
	if !ok {
		got := c.converged()
		fmt.Printf("NOT converged after %.1f s: %d of %d Services\n", d.Seconds(), got, n)
		return
	}
	fmt.Printf("converged in %.2f s (creating the Services took %.2f s of it), CPU %.2f s\n", d.Seconds(), created.Seconds(), (cpuTime() - cpu0).Seconds())
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

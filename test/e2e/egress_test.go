package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// Scenario 14 (issue 15): an egress gateway's node killed. A fake WARP gateway (fakewarp,
// 1 replica, egressCheck through its SOCKS port against the fake internet) and a dependent
// sharing its network namespace that fetches the endpoint through the tunnel every 100 ms; the
// gateway's node is killed (docker kill): the gateway is re-placed on another node and its
// EgressHealthy is True again there, the dependent is re-placed with it (same node, the new
// gateway container's namespace) and reaches the endpoint through the tunnel again. A watcher
// asserts the dependent never runs on a node without its gateway (nor in another container's
// namespace), and the endpoint's log that no request of the dependent left outside the tunnel.
func TestScenario14EgressGatewayNodeKilled(t *testing.T) {
	c := startCluster(t, harness.Options{})
	ctx := ctxFor(t, 10*time.Minute)
	const gwName, depName = "e2e-warp", "e2e-scraper"

	// The fake internet runs beside the nodes, on the harness network (the run's labels, so
	// Close removes it): the nodes' containers reach it through their node's NAT, so the tunnel's
	// requests arrive from the address of the node the gateway runs on.
	netIP := startFakenet(t, ctx, c)
	t.Logf("fake internet at %s", netIP)

	gw := spec.Service(gwName, "constellation-test/fakewarp:1", spec.Replicas(1),
		spec.Port("proxy", 1080), spec.Port("control", 1081), spec.Env("TUNNEL", netIP+":7000"))
	gw.Spec.EgressCheck = &v1.EgressCheck{
		URL: "http://" + netIP + "/cdn-cgi/trace?bytes=4096", Expect: "warp=(on|plus)", MinBytes: 4096,
		Interval: &v1.Duration{Duration: 500 * time.Millisecond}, Timeout: &v1.Duration{Duration: 400 * time.Millisecond},
		FailureThreshold: ptr(int32(3)), Via: "socks5:proxy", Reconnect: []string{"/app", "-reconnect"},
	}
	dep := spec.Service(depName, "constellation-test/fakewarp:1", spec.Replicas(1), spec.Env("FROM", depName))
	dep.Spec.Command = []string{"/app", "-client", "http://" + netIP + "/cdn-cgi/trace", "-every", "100ms"}
	dep.Spec.Network = &v1.NetworkSpec{Mode: v1.NetworkModeServicePrefix + gwName}

	w := &chainWatch{gw: gwName, dep: depName}
	stopWatch := w.start(ctx, c.Nodes)
	defer stopWatch()

	for _, s := range []*v1.Service{gw, dep} {
		if err := putService(ctx, c.Nodes[0], s); err != nil {
			t.Fatal(err)
		}
	}
	first, err := waitChain(ctx, c, c.Nodes, w, netIP, "", time.Time{}, 3*time.Minute)
	if err != nil {
		t.Fatalf("the chain did not come up: %v\n%s", err, w.describe())
	}
	victim := c.Node(first.gwNode)
	t.Logf("chain up: gateway and dependent on %s, the dependent's requests arrive through the tunnel from %s", victim.Name, victim.IP)

	if err := victim.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	w.dead(victim.Name)
	t.Logf("killed %s", victim.Name)
	survivors := others(c.Nodes, victim)

	back, err := waitChain(ctx, c, survivors, w, netIP, victim.Name, killed, 3*time.Minute)
	if err != nil {
		t.Fatalf("the chain did not come back after %s was killed: %v\n%s", victim.Name, err, w.describe())
	}
	stopWatch()
	t.Logf("after the kill of %s: gateway container running on %s %s later, EgressHealthy True there %s, "+
		"dependent running in its namespace %s, dependent's first request through the new tunnel %s",
		victim.Name, back.gwNode, back.gwRunning.Sub(killed).Round(time.Millisecond), back.egressHealthy.Sub(killed).Round(time.Millisecond),
		back.depRunning.Sub(killed).Round(time.Millisecond), back.throughTunnel.Sub(killed).Round(time.Millisecond))

	if v := w.violations(); len(v) > 0 {
		t.Errorf("the dependent ran where its gateway did not (%d snapshots), first: %s", len(v), v[0])
	}
	t.Logf("watcher: %d snapshots of the live nodes over the whole test, the dependent never ran without its gateway", w.snapshots())
	leaks := 0
	for _, r := range fakenetLog(netIP) {
		if r.From == depName && r.Warp != "on" {
			if leaks == 0 {
				t.Errorf("request from the dependent outside the tunnel: %+v", r)
			}
			leaks++
		}
	}
	if leaks > 0 {
		t.Errorf("%d requests from the dependent outside the tunnel", leaks)
	}
}

func ptr[T any](v T) *T { return &v }

// startFakenet runs constellation-test/fakenet:1 on the run's network and returns its address
// once it answers from here.
func startFakenet(t *testing.T, ctx context.Context, c *harness.Cluster) string {
	t.Helper()
	name := c.RunID + "-fakenet"
	out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--name", name, "--network", c.Network,
		"--label", harness.LabelE2E+"=1", "--label", harness.LabelRun+"="+c.RunID, "--label", harness.LabelPID+"="+strconv.Itoa(os.Getpid()),
		"constellation-test/fakenet:1").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run fakenet: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	b, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).Output()
	if err != nil {
		t.Fatalf("docker inspect fakenet: %v", err)
	}
	ip := strings.TrimSpace(string(b))
	waitFor(t, 30*time.Second, "the fake internet to answer", func() error {
		resp, err := http.Get("http://" + ip + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return ip
}

type fakenetRecord struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Warp   string    `json:"warp"`
	From   string    `json:"from"`
}

func fakenetLog(ip string) []fakenetRecord {
	resp, err := http.Get("http://" + ip + "/_log")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []fakenetRecord
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r fakenetRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// chainTimes are when each part of the chain was first seen up on gwNode: the containers by the
// watcher's snapshots (200 ms apart, plus one docker inspect), EgressHealthy by this poll, the
// tunnel by the endpoint's own timestamp of the request.
type chainTimes struct {
	gwNode                                              string
	gwRunning, egressHealthy, depRunning, throughTunnel time.Time
}

// waitChain waits, polling nodes, until the gateway runs on a node other than not, its
// Service's EgressHealthy is True with its only replica there, the dependent runs there in the
// gateway container's namespace, and a request of the dependent reached the endpoint through
// the tunnel from that node's address after since. It returns when each was first seen.
func waitChain(ctx context.Context, c *harness.Cluster, nodes []*harness.Node, w *chainWatch, netIP, not string, since time.Time, max time.Duration) (chainTimes, error) {
	var ct chainTimes
	err := waitUntil(ctx, max, func() error {
		snap := w.latest()
		gwNode, gwID := "", ""
		for node, cs := range snap {
			for _, k := range cs {
				if k.service == w.gw && k.running && node != not {
					gwNode, gwID = node, k.id
				}
			}
		}
		if gwNode == "" {
			return fmt.Errorf("no gateway container running off %q", not)
		}
		if gwNode != ct.gwNode {
			ct = chainTimes{gwNode: gwNode, gwRunning: w.firstSeen(gwID)}
		}
		if ct.egressHealthy.IsZero() {
			s, err := serviceVia(ctx, nodes, w.gw)
			if err != nil {
				return err
			}
			cond := v1.FindCondition(s.Status.Conditions, v1.ServiceEgressHealthy)
			if cond == nil || cond.Status != v1.ConditionTrue {
				return fmt.Errorf("EgressHealthy %+v", cond)
			}
			if len(s.Status.ReplicaStatuses) != 1 || s.Status.ReplicaStatuses[0].Node != gwNode {
				return fmt.Errorf("gateway replica statuses %+v, want one on %s", s.Status.ReplicaStatuses, gwNode)
			}
			ct.egressHealthy = time.Now()
		}
		if ct.depRunning.IsZero() {
			for _, k := range snap[gwNode] {
				if k.service == w.dep && k.running && sameContainer(k.netnsOwner(), gwID) {
					ct.depRunning = w.firstSeen(k.id)
				}
			}
			if ct.depRunning.IsZero() {
				return fmt.Errorf("no dependent running in %s's gateway container %.12s", gwNode, gwID)
			}
		}
		ip := c.Node(gwNode).IP
		for _, r := range fakenetLog(netIP) {
			if r.From == w.dep && r.Warp == "on" && r.Source == ip && r.Time.After(since) {
				ct.throughTunnel = r.Time
				return nil
			}
		}
		return fmt.Errorf("no request of the dependent through the tunnel from %s (%s) yet", gwNode, ip)
	})
	return ct, err
}

// serviceVia reads a Service through the first node of nodes that answers.
func serviceVia(ctx context.Context, nodes []*harness.Node, name string) (*v1.Service, error) {
	var errs []string
	for _, n := range nodes {
		s, err := n.Service(ctx, name)
		if err == nil {
			return s, nil
		}
		errs = append(errs, n.Name+": "+err.Error())
	}
	return nil, fmt.Errorf("services/%s: %s", name, strings.Join(errs, "; "))
}

func sameContainer(a, b string) bool {
	return a != "" && b != "" && (strings.HasPrefix(a, b) || strings.HasPrefix(b, a))
}

// managed is one container of the chain on a node.
type managed struct {
	id, service, networkMode string
	running                  bool
}

// netnsOwner is the container whose namespace k joined ("container:<id>"), or "".
func (k managed) netnsOwner() string {
	id, _ := strings.CutPrefix(k.networkMode, "container:")
	if id == k.networkMode {
		return ""
	}
	return id
}

// chainWatch snapshots the managed containers of every live node every 200 ms (one docker
// inspect per node, so a snapshot of a node is one moment) and records every snapshot in which
// a running dependent has no running gateway container on its node to share a namespace with.
type chainWatch struct {
	gw, dep string

	mu sync.Mutex
	// guarded by mu:
	last  map[string][]managed
	seen  map[string]time.Time // container ID → when a snapshot first showed it running
	down  map[string]bool
	bad   []string
	count int
}

func (w *chainWatch) start(ctx context.Context, nodes []*harness.Node) (stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				taken := time.Now()
				cs, err := managedContainers(wctx, n)
				w.record(n.Name, taken, cs, err)
				select {
				case <-wctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { cancel(); wg.Wait() }) }
}

func managedContainers(ctx context.Context, n *harness.Node) ([]managed, error) {
	out, err := n.Exec(ctx, "sh", "-c", `ids=$(docker ps -aq --filter label=constellation.service); [ -z "$ids" ] || `+
		`docker inspect -f '{{.Id}} {{index .Config.Labels "constellation.service"}} {{.State.Running}} {{.HostConfig.NetworkMode}}' $ids 2>/dev/null; true`)
	if err != nil {
		return nil, err
	}
	var cs []managed
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 {
			cs = append(cs, managed{id: f[0], service: f[1], running: f[2] == "true", networkMode: f[3]})
		}
	}
	return cs, nil
}

func (w *chainWatch) record(node string, taken time.Time, cs []managed, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string][]managed{}
	}
	if err != nil || w.down[node] {
		delete(w.last, node) // a node that does not answer (killed) runs nothing we can see
		return
	}
	w.last[node] = cs
	w.count++
	if w.seen == nil {
		w.seen = map[string]time.Time{}
	}
	for _, k := range cs {
		if _, ok := w.seen[k.id]; k.running && !ok {
			w.seen[k.id] = taken
		}
	}
	for _, d := range cs {
		if d.service != w.dep || !d.running {
			continue
		}
		ok := false
		for _, g := range cs {
			if g.service == w.gw && g.running && sameContainer(d.netnsOwner(), g.id) {
				ok = true
			}
		}
		if !ok {
			w.bad = append(w.bad, fmt.Sprintf("%s %s: dependent %.12s (network %s) running with no running gateway container of that namespace there; containers %+v",
				time.Now().Format("15:04:05.000"), node, d.id, d.networkMode, cs))
		}
	}
}

// dead marks a killed node: its last snapshot is dropped and no more are taken into account.
func (w *chainWatch) dead(node string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down == nil {
		w.down = map[string]bool{}
	}
	w.down[node] = true
	delete(w.last, node)
}

// firstSeen is when a snapshot (its start) first showed container id running.
func (w *chainWatch) firstSeen(id string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[id]
}

func (w *chainWatch) latest() map[string][]managed {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string][]managed, len(w.last))
	for k, v := range w.last {
		m[k] = v
	}
	return m
}

func (w *chainWatch) violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bad...)
}

func (w *chainWatch) snapshots() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}

func (w *chainWatch) describe() string {
	var b strings.Builder
	for node, cs := range w.latest() {
		fmt.Fprintf(&b, "%s: %+v\n", node, cs)
	}
	return b.String()
}

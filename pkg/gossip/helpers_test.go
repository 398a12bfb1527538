package gossip

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/gossip/gossiptest"
	"github.com/constellation-sh/constellation/pkg/observed"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// tnode is one gossip node of a test cluster.
type tnode struct {
	name   string
	g      *Gossip
	set    *observed.Set
	filter *gossiptest.Filter // nil on the in-memory network
	mem    *gossiptest.Transport
	addr   string
	reg    *prometheus.Registry
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("GOSSIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// startLoopback starts a node on a real UDP/TCP transport on 127.0.0.1 behind a Filter.
func startLoopback(t testing.TB, name string, mod func(*Config)) *tnode {
	t.Helper()
	return startLoopbackAt(t, name, 0, mod)
}

// startLoopbackAt is startLoopback on a given port (0: a free one).
func startLoopbackAt(t testing.TB, name string, port int, mod func(*Config)) *tnode {
	t.Helper()
	f, addr, err := gossiptest.NewLoopbackAt(port)
	if err != nil {
		t.Fatalf("loopback transport: %v", err)
	}
	return startWith(t, name, f, addr, mod, func(n *tnode) { n.filter = f })
}

// startMem starts a node on an in-memory network.
func startMem(t testing.TB, nw *gossiptest.Network, name string, mod func(*Config)) *tnode {
	t.Helper()
	tr := nw.NewTransport()
	return startWith(t, name, tr, tr.Addr(), mod, func(n *tnode) { n.mem = tr })
}

func startWith(t testing.TB, name string, tr memberlist.Transport, addr string, mod func(*Config), set func(*tnode)) *tnode {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = name
	cfg.EncryptionKey = testKey
	cfg.Transport = tr
	cfg.Labels = map[string]string{"zone": "z-" + name}
	cfg.APIAddress = "127.0.0.1:17480"
	cfg.RaftAddress = "127.0.0.1:17481"
	cfg.Version = "test"
	cfg.AdvertiseAddress = "127.0.0.1"
	if mod != nil {
		mod(&cfg)
	}
	n := &tnode{name: name, set: observed.NewSet(), addr: addr, reg: prometheus.NewRegistry()}
	cfg.Set, cfg.Logger, cfg.Registerer = n.set, testLogger(t).With("node", name), n.reg
	g, err := New(cfg)
	if err != nil {
		_ = tr.Shutdown()
		t.Fatalf("start %s: %v", name, err)
	}
	n.g = g
	set(n)
	t.Cleanup(func() { _ = g.Shutdown() })
	return n
}

func joinAll(t testing.TB, nodes []*tnode) {
	t.Helper()
	for _, n := range nodes[1:] {
		if _, err := n.g.Join([]string{nodes[0].addr}); err != nil {
			t.Fatalf("%s join: %v", n.name, err)
		}
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

// nodeState returns what view says of name.
func nodeOf(v observed.View, name string) (observed.Node, bool) {
	for _, n := range v.Nodes() {
		if n.Name == name {
			return n, true
		}
	}
	return observed.Node{}, false
}

// aliveNames lists the alive nodes of a view.
func aliveNames(v observed.View) string {
	var out []string
	for _, n := range v.Nodes() {
		if n.Alive {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// replicaSummary renders the replicas of a view comparably: node/service/index/state/health.
func replicaSummary(v observed.View) string {
	var out []string
	for _, r := range v.Replicas() {
		out = append(out, fmt.Sprintf("%s/%s/%d/%s/%s/%s", r.Node, r.Service, r.Index, r.State, r.Health, r.Ports["80/tcp"]))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func replica(node, svc string, idx int32, state v1.ReplicaState) observed.Replica {
	return observed.Replica{
		Service: svc, Index: idx, Node: node,
		ContainerID: fmt.Sprintf("%064x", idx+1), SpecHash: "h1",
		State: state, Health: v1.HealthHealthy,
		Ports:     map[string]string{"80/tcp": fmt.Sprintf("127.0.0.1:%d", 30000+idx)},
		UpdatedAt: time.Unix(1700000000, 0).UTC(),
	}
}

func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// busy spins n goroutines until stop is closed.
func busy(n int, stop <-chan struct{}, wg *sync.WaitGroup) {
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := 0; i < 1e5; i++ {
					x += i
				}
			}
		}()
	}
}

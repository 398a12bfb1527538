package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// quorumlessStore answers stale reads from the local replica, while linearizable ones hang
// until their context ends, as the raft store does without quorum.
type quorumlessStore struct{ store.Store }

func (s quorumlessStore) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	if !store.ApplyReadOptions(opts).Stale {
		<-ctx.Done()
		return nil, fmt.Errorf("linearizable read of %s/%s: %w", kind, name, store.ErrUnavailable)
	}
	return s.Store.Get(ctx, kind, name, opts...)
}

func (s quorumlessStore) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	if !store.ApplyReadOptions(opts).Stale {
		<-ctx.Done()
		return nil, 0, fmt.Errorf("linearizable list of %s: %w", kind, store.ErrUnavailable)
	}
	return s.Store.List(ctx, kind, sel, opts...)
}

// TestCreateNeedsNoQuorum (B8): a replica whose env names a Secret is created while the store
// has no quorum. Before, the Secret was read linearizably and the create failed after the
// read's timeout.
func TestCreateNeedsNoQuorum(t *testing.T) {
	f := newFixture(t)
	sec := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}, Metadata: v1.ObjectMeta{Name: "db"},
		Spec: v1.SecretSpec{Data: v1.SecretData{"password": "s3cret"}}}
	if _, err := f.st.Create(f.ctx, sec); err != nil {
		t.Fatal(err)
	}
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.Env = []v1.EnvVar{{Name: "DB_PASSWORD", SecretRef: &v1.SecretKeyRef{Name: "db", Key: "password"}}}
	})
	f.restart(func(c *Config) { c.Store = quorumlessStore{f.st} })
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
	defer cancel()
	if _, err := f.rec.Reconcile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if f.running() != 1 {
		t.Fatalf("replica not created without quorum: %+v", f.published)
	}
}

// TestProbesOfVanishedContainersAreDropped (B12): a probed container removed behind the
// agent's back (docker rm, an engine reset) loses its probe. Before, only containers the
// reconciler still saw were forgotten, and the goroutine leaked.
func TestProbesOfVanishedContainersAreDropped(t *testing.T) {
	f := newFixture(t)
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/healthz"}}
	})
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if n := f.rec.prober.count(); n != 1 {
		t.Fatalf("%d probes, want 1", n)
	}
	old := f.published[0].ContainerID
	// Removed behind the agent's back while the Service stays: the old probe goes, the
	// replacement gets its own.
	f.dock.mu.Lock()
	delete(f.dock.ctrs, old)
	f.dock.mu.Unlock()
	for range 3 {
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := f.rec.prober.status(old); h != "" {
		t.Fatalf("the removed container %s is still probed", old)
	}
	if n := f.rec.prober.count(); n != 1 {
		t.Fatalf("%d probes for 1 running container", n)
	}
	// The Service deleted and its container removed by hand: nothing is left probed.
	cur := f.published[0].ContainerID
	if _, err := f.st.Delete(f.ctx, v1.KindService, "web", ""); err != nil {
		t.Fatal(err)
	}
	f.dock.mu.Lock()
	delete(f.dock.ctrs, cur)
	f.dock.mu.Unlock()
	for range 3 {
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.rec.prober.count(); n != 0 {
		t.Fatalf("%d probes left after the container vanished", n)
	}
}

// TestDrainsOfVanishedContainersAreDropped (B12): a draining container removed behind the
// agent's back leaves no drain entry.
func TestDrainsOfVanishedContainersAreDropped(t *testing.T) {
	f := newFixtureWith(t, func(c *Config) { c.DrainDelay = 5 * time.Second })
	f.service(1, "echo:1")
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	id := f.published[0].ContainerID
	if _, err := f.st.Delete(f.ctx, v1.KindService, "web", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	f.rec.mu.Lock()
	_, draining := f.rec.draining[id]
	f.rec.mu.Unlock()
	if !draining {
		t.Fatal("the container of the deleted Service is not draining")
	}
	f.dock.mu.Lock()
	delete(f.dock.ctrs, id)
	f.dock.mu.Unlock()
	for range 3 {
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if len(f.rec.draining) != 0 {
		t.Fatalf("drain entries left: %v", f.rec.draining)
	}
}

// TestRestartedAgentAdoptsADrainingContainer is the `make run` stall: `make stop` deletes the
// example and stops the agent inside the drain delay, so the containers stay; `make run`
// starts the agent on the same data dir, whose first pass finds them on their labels, without
// a Service, and drains them; the example is applied at once, the scheduler assigns the same
// indices with the same spec hash, and the containers are desired again. Before, their drain
// entries stayed: they were published as terminating (never ready, never routed) for good, and
// nothing was logged; `ctl apply --wait` gave up after its 2 minutes.
func TestRestartedAgentAdoptsADrainingContainer(t *testing.T) {
	f := newFixtureWith(t, func(c *Config) { c.DrainDelay = 5 * time.Second })
	f.service(1, "echo:1")
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	id := f.published[0].ContainerID
	// make stop: the Service is deleted, the agent stops before the drain ends.
	if _, err := f.st.Delete(f.ctx, v1.KindService, "web", ""); err != nil {
		t.Fatal(err)
	}
	// make run: a new agent process; its first pass drains the container it finds.
	f.restart(func(c *Config) { c.DrainDelay = 5 * time.Second })
	f.clk.Step(time.Second)
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if r := f.published[0]; r.State != v1.ReplicaTerminating {
		t.Fatalf("without its Service the container should drain: %+v", r)
	}
	// ctl apply, and the scheduler's assignment: same index, same spec hash.
	f.service(1, "echo:1")
	f.clk.Step(time.Second)
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and after the drain delay would have ended
		f.clk.Step(5 * time.Second)
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
	r := f.published[0]
	if r.ContainerID != id || !r.Ready() {
		t.Fatalf("the re-assigned container was not adopted: %+v (want %s running and ready)", r, id)
	}
}

// listener accepts TCP connections until closed; its port is a fake container's host port.
func listener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l
}

func portOf(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) replica(idx int32) observed.Replica {
	f.t.Helper()
	for _, r := range f.published {
		if r.Index == idx {
			return r
		}
	}
	f.t.Fatalf("replica %d not published: %+v", idx, f.published)
	return observed.Replica{}
}

// TestEngineOutageNoCheckTCPFallback (B6): while Docker does not answer, a replica without a
// health check stays ready while its first TCP port connects and becomes Unknown (not ready:
// out of Traefik) when it stops answering. Before, nothing was published during the outage
// and the dead replica stayed ready.
func TestEngineOutageNoCheckTCPFallback(t *testing.T) {
	f := newFixture(t)
	l0, l1 := listener(t), listener(t)
	byPort := map[string]net.Listener{portOf(t, l0.Addr().String()): l0, portOf(t, l1.Addr().String()): l1}
	ports := []string{portOf(t, l0.Addr().String()), portOf(t, l1.Addr().String())}
	f.dock.hostPort = func() string { p := ports[0]; ports = ports[1:]; return p } // under f.dock.mu
	f.service(2, "echo:1")
	for range 2 {
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
		f.clk.Step(time.Second)
	}
	if !f.replica(0).Ready() || !f.replica(1).Ready() {
		t.Fatalf("not ready before the outage: %+v", f.published)
	}
	// dockerd dies and replica 1's process with it; replica 0 runs on (live-restore).
	f.dock.setDown(true)
	byPort[portOf(t, f.replica(1).Ports["8080/tcp"])].Close() // creates run in parallel: look the port up
	if err := f.reconcile(); !errors.Is(err, docker.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	c1 := f.replica(1).ContainerID
	f.stepUntil("the outage probe of replica 1 to fail", 50*time.Millisecond, func() bool {
		h, fallback := f.rec.prober.statusKind(c1)
		return fallback && h == v1.HealthUnhealthy
	})
	_ = f.reconcile()
	if r := f.replica(0); !r.Ready() || r.Health != v1.HealthNone {
		t.Fatalf("replica 0 still answers, it must stay ready: %+v", r)
	}
	if r := f.replica(1); r.Ready() || r.Health != v1.HealthUnknown || r.Reason != v1.ReasonEngineUnavailable {
		t.Fatalf("replica 1 does not answer and Docker cannot tell: want Unknown, got %+v", r)
	}
	// Docker is back: the outage probes go, Docker's view rules again.
	f.dock.setDown(false)
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if n := f.rec.prober.count(); n != 0 {
		t.Fatalf("%d outage probes left with the engine back", n)
	}
}

// TestEngineOutageExecCheckIsUnknown (B6): an exec-checked replica (Docker's HEALTHCHECK)
// cannot be checked without Docker: Unknown, not ready.
func TestEngineOutageExecCheckIsUnknown(t *testing.T) {
	f := newFixture(t)
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.HealthCheck = &v1.HealthCheck{Exec: &v1.ExecHealthCheck{Command: []string{"/probe"}}}
	})
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	f.dock.mu.Lock()
	for _, c := range f.dock.ctrs {
		c.Health = "healthy"
	}
	f.dock.mu.Unlock()
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if !f.replica(0).Ready() {
		t.Fatalf("not ready before the outage: %+v", f.published)
	}
	f.dock.setDown(true)
	_ = f.reconcile()
	if r := f.replica(0); r.Ready() || r.Health != v1.HealthUnknown {
		t.Fatalf("exec-checked replica during the outage: %+v, want Unknown", r)
	}
}

// TestEngineOutageHTTPProbeDecides (B6): the agent's HTTP probe needs no Docker; during the
// outage its verdict is published. Before, a replica failing its probe stayed ready until
// Docker came back.
func TestEngineOutageHTTPProbeDecides(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	f := newFixture(t)
	f.dock.hostPort = func() string { return u.Port() }
	one := int32(1)
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/"}, Interval: &v1.Duration{Duration: 100 * time.Millisecond}, Retries: &one}
	})
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	id := f.replica(0).ContainerID
	f.stepUntil("the probe to pass", 50*time.Millisecond, func() bool { h, _ := f.rec.prober.status(id); return h == v1.HealthHealthy })
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if !f.replica(0).Ready() {
		t.Fatalf("not ready before the outage: %+v", f.published)
	}
	f.dock.setDown(true)
	failing.Store(true)
	f.stepUntil("the probe to fail", 50*time.Millisecond, func() bool { h, _ := f.rec.prober.status(id); return h == v1.HealthUnhealthy })
	_ = f.reconcile()
	if r := f.replica(0); r.Ready() || r.Health != v1.HealthUnhealthy {
		t.Fatalf("failing replica during the outage: %+v, want unhealthy", r)
	}
}

// TestRestoredReplicasAreKept: an agent restarted on the same node starts from what its
// previous run published (gossip's saved state). Reconciling one Service must not withdraw the
// others' replicas, and an adopted container whose agent-side probe had passed stays healthy
// instead of flickering through "starting" (which would pull it from every load balancer).
func TestRestoredReplicasAreKept(t *testing.T) {
	f := newFixture(t)
	f.serviceWith(1, "echo:1", func(sp *v1.ServiceSpec) {
		sp.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/healthz"}}
	})
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if len(f.published) != 1 {
		t.Fatalf("published %+v", f.published)
	}
	web := f.published[0]
	web.Health = v1.HealthHealthy // what the previous run's probe had found
	other := observed.Replica{Service: "other", Index: 0, Node: "n1", ContainerID: "c-other", State: v1.ReplicaRunning, Health: v1.HealthNone}
	f.restart(func(c *Config) { c.Restored = []observed.Replica{web, other} })
	f.published = nil
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	got := map[string]observed.Replica{}
	for _, r := range f.published {
		got[r.Service] = r
	}
	if _, ok := got["other"]; !ok {
		t.Fatalf("reconciling web withdrew the restored replica of other: %+v", f.published)
	}
	if w := got["web"]; w.ContainerID != web.ContainerID || w.Health != v1.HealthHealthy {
		t.Fatalf("web after the restart: %+v, want container %s adopted and healthy", w, web.ContainerID)
	}
	// other is reconciled too (it was enqueued at start): it no longer exists, so it goes.
	if _, err := f.rec.Reconcile(f.ctx, "other"); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.published {
		if r.Service == "other" {
			t.Fatalf("a restored Service that no longer exists stayed published: %+v", f.published)
		}
	}
}

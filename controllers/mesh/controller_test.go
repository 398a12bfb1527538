package mesh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// hookStore runs before just ahead of the next status write (to make it lose the
// compare-and-swap) and counts status writes.
type hookStore struct {
	store.Store
	mu     sync.Mutex
	before func(obj v1.Object)
	writes int
}

func (s *hookStore) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	s.mu.Lock()
	before := s.before
	s.before = nil
	s.writes++
	s.mu.Unlock()
	if before != nil {
		before(obj)
	}
	return s.Store.UpdateStatus(ctx, obj)
}

func (s *hookStore) statusWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

type env struct {
	t   *testing.T
	st  *hookStore
	reg *prometheus.Registry
	ctl *Controller
}

func newEnv(t *testing.T, st *hookStore, cidr string) *env {
	t.Helper()
	e := &env{t: t, st: st, reg: prometheus.NewRegistry()}
	c, err := New(Config{Store: st, CIDR: netip.MustParsePrefix(cidr), Registerer: e.reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.ctl = c
	return e
}

// gauge reads a gauge by name and service label; 0 when absent.
func (e *env) gauge(name, service string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == service {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// run runs the controller until the returned stop is called (or the test ends).
func (e *env) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.ctl.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

func service(name string, replicas int32) *v1.Service {
	return &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ServiceSpec{Image: "img", Replicas: &replicas}}
}

func (e *env) create(s *v1.Service) {
	e.t.Helper()
	if _, err := e.st.Create(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) get(name string) *v1.Service {
	e.t.Helper()
	o, err := e.st.Get(context.Background(), v1.KindService, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*v1.Service)
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// allocated waits until name holds a virtual IP and one per replica index below replicas.
func (e *env) allocated(name string, replicas int) *v1.Service {
	e.t.Helper()
	var svc *v1.Service
	eventually(e.t, "services/"+name+" allocated", func() error {
		svc = e.get(name)
		if svc.Status.VirtualIP == "" {
			return fmt.Errorf("no virtualIP: %+v", svc.Status)
		}
		if len(svc.Status.ReplicaVirtualIPs) < replicas {
			return fmt.Errorf("replicaVirtualIPs %+v, want %d", svc.Status.ReplicaVirtualIPs, replicas)
		}
		return nil
	})
	return svc
}

func addrs(svc *v1.Service) []string {
	out := []string{svc.Status.VirtualIP}
	for _, r := range svc.Status.ReplicaVirtualIPs {
		out = append(out, r.IP)
	}
	return out
}

func TestConcurrentCreationsGetDistinctAddresses(t *testing.T) {
	e := newEnv(t, &hookStore{Store: store.NewMemory()}, "10.213.0.0/24")
	e.run()
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); e.create(service(fmt.Sprintf("s%02d", i), int32(i%4))) }()
	}
	wg.Wait()
	seen := map[string]string{}
	cidr := netip.MustParsePrefix("10.213.0.0/24")
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		svc := e.allocated(name, i%4)
		for _, a := range addrs(svc) {
			ip := netip.MustParseAddr(a)
			if !cidr.Contains(ip) || a == "10.213.0.0" || a == "10.213.0.1" || a == "10.213.0.255" {
				t.Errorf("%s got %s: outside 10.213.0.0/24 or reserved", name, a)
			}
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s both hold %s", other, name, a)
			}
			seen[a] = name
		}
	}
	want := 0
	for i := range n {
		want += 1 + i%4
	}
	if len(seen) != want {
		t.Errorf("%d distinct addresses, want %d", len(seen), want)
	}
}

func TestStatusWrittenBySomeoneElseIsNotClobbered(t *testing.T) {
	st := &hookStore{Store: store.NewMemory()}
	e := newEnv(t, st, "10.213.0.0/16")
	// Just before the controller's first write, the status controller writes readyReplicas.
	st.before = func(v1.Object) {
		cur := e.get("web")
		cur.Status.ReadyReplicas = 2
		cur.Status.Conditions = []v1.Condition{{Type: v1.ServiceReady, Status: v1.ConditionTrue, Reason: v1.ReasonAllReplicasReady}}
		if _, err := st.Store.UpdateStatus(context.Background(), cur); err != nil {
			t.Error(err)
		}
	}
	e.create(service("web", 2))
	e.run()
	svc := e.allocated("web", 2)
	if svc.Status.ReadyReplicas != 2 || len(svc.Status.Conditions) != 1 {
		t.Errorf("the other writer's status was lost: %+v", svc.Status)
	}
	if w := st.statusWrites(); w != 2 {
		t.Errorf("%d status writes, want 2 (one lost the compare-and-swap, one after re-reading)", w)
	}
}

func TestDeletingAServiceFreesItsAddresses(t *testing.T) {
	// A /30 has one address to hand out.
	e := newEnv(t, &hookStore{Store: store.NewMemory()}, "10.9.0.0/30")
	e.run()
	e.create(service("a", 0))
	if got := e.allocated("a", 0).Status.VirtualIP; got != "10.9.0.2" {
		t.Fatalf("a got %s, want 10.9.0.2", got)
	}
	e.create(service("b", 0))
	eventually(t, "b waits for an address", func() error {
		if v := e.gauge("constellation_mesh_addresses_wanted", "b"); v != 1 {
			return fmt.Errorf("constellation_mesh_addresses_wanted{service=b} = %v", v)
		}
		return nil
	})
	if v := e.get("b").Status.VirtualIP; v != "" {
		t.Fatalf("b got %s while a holds the only address", v)
	}
	if _, err := e.st.Delete(context.Background(), v1.KindService, "a", ""); err != nil {
		t.Fatal(err)
	}
	if got := e.allocated("b", 0).Status.VirtualIP; got != "10.9.0.2" {
		t.Errorf("b got %s after a was deleted, want the freed 10.9.0.2", got)
	}
	if v := e.gauge("constellation_mesh_addresses_wanted", "b"); v != 0 {
		t.Errorf("b still counted as waiting: %v", v)
	}

	// Re-created under the same name, b is a new object: the old one's address was freed with
	// it, and the new one gets an allocation of its own (here the only address there is).
	if _, err := e.st.Delete(context.Background(), v1.KindService, "b", ""); err != nil {
		t.Fatal(err)
	}
	e.create(service("b", 0))
	if got := e.allocated("b", 0).Status.VirtualIP; got != "10.9.0.2" {
		t.Errorf("re-created b got %q, want the freed 10.9.0.2", got)
	}
}

func TestRestartKeepsAddressesAndScalingDownKeepsReplicas(t *testing.T) {
	st := &hookStore{Store: store.NewMemory()}
	e := newEnv(t, st, "10.213.0.0/16")
	stop := e.run()
	e.create(service("web", 3))
	e.create(service("db", 1))
	web, db := addrs(e.allocated("web", 3)), addrs(e.allocated("db", 1))
	stop()

	// A new controller (another node won the Lease) on the same store writes nothing.
	writes := st.statusWrites()
	e2 := newEnv(t, st, "10.213.0.0/16")
	e2.run()
	// Scale web down to 1, then up to 4: indices 1 and 2 keep their addresses throughout.
	cur := e.get("web")
	*cur.Spec.Replicas = 1
	if _, err := st.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	e2.create(service("marker", 0)) // reconciled after web's update: a point to wait for
	e2.allocated("marker", 0)
	if got := addrs(e.get("web")); fmt.Sprint(got) != fmt.Sprint(web) {
		t.Errorf("after restart and scale-down web holds %v, want %v", got, web)
	}
	if got := addrs(e.get("db")); fmt.Sprint(got) != fmt.Sprint(db) {
		t.Errorf("after restart db holds %v, want %v", got, db)
	}
	if w := st.statusWrites() - writes; w != 1 {
		t.Errorf("%d status writes after the restart, want 1 (the marker's)", w)
	}
	cur = e.get("web")
	*cur.Spec.Replicas = 4
	if _, err := st.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	got := addrs(e2.allocated("web", 4))
	if fmt.Sprint(got[:4]) != fmt.Sprint(web) || len(got) != 5 {
		t.Errorf("after scaling up web holds %v, want %v and one more", got, web)
	}
}

func TestChangedCIDRKeepsAddressesAndReportsThem(t *testing.T) {
	st := &hookStore{Store: store.NewMemory()}
	e := newEnv(t, st, "10.213.0.0/16")
	stop := e.run()
	e.create(service("web", 1))
	old := addrs(e.allocated("web", 1))
	stop()

	e2 := newEnv(t, st, "10.214.0.0/24")
	e2.run()
	cur := e.get("web")
	*cur.Spec.Replicas = 2
	if _, err := st.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	got := addrs(e2.allocated("web", 2))
	if fmt.Sprint(got[:2]) != fmt.Sprint(old) {
		t.Errorf("web's addresses were renumbered: %v, had %v", got, old)
	}
	if !netip.MustParsePrefix("10.214.0.0/24").Contains(netip.MustParseAddr(got[2])) {
		t.Errorf("replica 1 got %s, want an address of the new CIDR", got[2])
	}
	eventually(t, "the old addresses are reported", func() error {
		if v := e2.gauge("constellation_mesh_addresses_outside_cidr", "web"); v != 2 {
			return fmt.Errorf("constellation_mesh_addresses_outside_cidr{service=web} = %v", v)
		}
		return nil
	})
}

func TestSharedAddressTheYoungerIsRenumbered(t *testing.T) {
	st := &hookStore{Store: store.NewMemory()}
	e := newEnv(t, st, "10.213.0.0/16")
	e.run()
	e.create(service("old", 0))
	vip := e.allocated("old", 0).Status.VirtualIP
	e.create(service("young", 0))
	e.allocated("young", 0)
	// Someone writes old's address into young's status by hand.
	cur := e.get("young")
	cur.Status.VirtualIP = vip
	if _, err := st.Store.UpdateStatus(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, "young renumbered", func() error {
		if got := e.get("young").Status.VirtualIP; got == vip || got == "" {
			return fmt.Errorf("young holds %q (old holds %s)", got, vip)
		}
		return nil
	})
	if got := e.get("old").Status.VirtualIP; got != vip {
		t.Errorf("old lost its address: %s, had %s", got, vip)
	}
}

func TestNotLeaderWritesNothing(t *testing.T) {
	st := &hookStore{Store: store.NewMemory()}
	c, err := New(Config{Store: st, CIDR: netip.MustParsePrefix("10.213.0.0/16"), IsLeader: func() bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(context.Background(), service("web", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if st.statusWrites() != 0 {
		t.Errorf("a controller that is not the leader wrote status")
	}
}

func TestAddressHeldTwiceByOneServiceIsSplit(t *testing.T) {
	st := &hookStore{Store: store.NewMemory()}
	e := newEnv(t, st, "10.213.0.0/16")
	e.run()
	e.create(service("web", 1))
	svc := e.allocated("web", 1)
	vip := svc.Status.VirtualIP
	svc.Status.ReplicaVirtualIPs[0].IP = vip // replica 0 written by hand onto the Service's address
	if _, err := st.Store.UpdateStatus(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replica 0 given its own address", func() error {
		got := e.get("web").Status
		if got.VirtualIP != vip {
			return fmt.Errorf("the Service's address changed: %s, had %s", got.VirtualIP, vip)
		}
		if len(got.ReplicaVirtualIPs) != 1 || got.ReplicaVirtualIPs[0].IP == vip {
			return fmt.Errorf("replica addresses %+v", got.ReplicaVirtualIPs)
		}
		return nil
	})
}

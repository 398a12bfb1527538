package replicaset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	mongoengine "github.com/constellation-sh/constellation/pkg/replicaset/mongo"
	"github.com/constellation-sh/constellation/pkg/store"
	fakemongo "github.com/constellation-sh/constellation/test/fakes/mongo"
)

// mongoVIP is the virtual IP the status controller would give replica i of the member Service.
func mongoVIP(i int) string { return fmt.Sprintf("10.213.1.%d", 10+i) }

// setMongoReplicas writes the member Service's status as the status and mesh controllers would:
// a virtual IP per replica, and the replica running unless down says otherwise.
func setMongoReplicas(svc *v1.Service, n int, down map[int]bool) {
	svc.Status.ReplicaVirtualIPs, svc.Status.ReplicaStatuses = nil, nil
	for i := range n {
		st := v1.ReplicaStatus{Index: int32(i), Node: fmt.Sprintf("n%d", i), State: v1.ReplicaRunning, Health: v1.HealthHealthy}
		if down[i] {
			st.State, st.Health = v1.ReplicaExited, ""
		}
		svc.Status.ReplicaVirtualIPs = append(svc.Status.ReplicaVirtualIPs, v1.ReplicaVirtualIP{Index: int32(i), IP: mongoVIP(i)})
		svc.Status.ReplicaStatuses = append(svc.Status.ReplicaStatuses, st)
	}
}

// TestControllerMongo runs the real controller, on the memory store, with the real mongo engine
// against five wire-level fake mongods: initiate and converge a 3-member set, fail the primary
// over, then scale the member Service to 5.
func TestControllerMongo(t *testing.T) {
	ctx := context.Background()
	set := fakemongo.NewSet("rs0")
	t.Cleanup(set.Close)
	// The fakes know themselves by the per-replica mesh names the controller puts in the config.
	var fakes []*fakemongo.Member
	byVIP := map[string]*fakemongo.Member{}
	for i := range 5 {
		m, err := set.AddMember(fmt.Sprintf("db-%d.db:27017", i))
		if err != nil {
			t.Fatal(err)
		}
		fakes = append(fakes, m)
		byVIP[net.JoinHostPort(mongoVIP(i), "27017")] = m
	}
	// Config.Dial maps the members' virtual IPs to the fakes' loopback addresses.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		m, ok := byVIP[addr]
		if !ok {
			return nil, fmt.Errorf("no fake mongod behind %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, m.Addr())
	}
	nameOf := map[*fakemongo.Member]string{}
	for i, m := range fakes {
		nameOf[m] = ReplicaName("db", i)
	}

	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: "db"},
		Spec: v1.ServiceSpec{Image: "mongo:test", Replicas: i32(3),
			Ports: []v1.ServicePort{{Name: "metrics", ContainerPort: 9216}, {Name: "mongo", ContainerPort: 27017}}}}
	rs := &v1.ReplicaSet{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindReplicaSet},
		Metadata: v1.ObjectMeta{Name: "users"},
		Spec:     v1.ReplicaSetSpec{Engine: v1.EngineMongo, Members: []string{"db"}, Mongo: &v1.MongoReplicaSet{ReplSetName: "rs0"}}}
	e := &env{t: t, st: store.NewMemory()}
	for _, o := range []v1.Object{svc, node("n0"), node("n1"), node("n2"), node("n3"), node("n4"), rs} {
		if _, err := e.st.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetMetadata().Name, err)
		}
	}
	ctl, err := New(Config{Store: e.st, Poll: 20 * time.Millisecond, OffsetInterval: time.Minute, Dial: dial,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Engines: map[v1.Engine]EngineFactory{v1.EngineMongo: mongoengine.NewEngine}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ctl.Run(rctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.updateStatus("db", func(s *v1.Service) { setMongoReplicas(s, 3, nil) })

	users := func() *v1.ReplicaSet { return e.get(v1.KindReplicaSet, "users").(*v1.ReplicaSet) }
	// last is what the last poll saw, for the failure message.
	var last v1.ReplicaSetStatus
	waitFor := func(what string, cond func(*v1.ReplicaSet) bool) *v1.ReplicaSet {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := users()
			last = r.Status
			if cond(r) {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s; status %+v; fake primary %v", what, last, set.Primary() != nil)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// converged: Ready True, status.primary the member the fakes elected, every desired member
	// reported, one primary and the rest secondaries, all healthy.
	converged := func(n int) func(*v1.ReplicaSet) bool {
		return func(r *v1.ReplicaSet) bool {
			c := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetReady)
			p := set.Primary()
			if c == nil || c.Status != v1.ConditionTrue || p == nil || r.Status.Primary != nameOf[p] || len(r.Status.Members) != n {
				return false
			}
			for i, m := range r.Status.Members {
				want := mongoengine.RoleSecondary
				if m.Name == r.Status.Primary {
					want = mongoengine.RolePrimary
				}
				if m.Name != ReplicaName("db", i) || m.Role != want || m.Health != mongoengine.HealthHealthy {
					return false
				}
			}
			return true
		}
	}

	// 1. Initiate and converge on three members.
	r := waitFor("3-member set initiated and Ready", converged(3))
	if r.Status.Primary != "db-0" {
		t.Fatalf("status.primary %q, want db-0 (the set is initiated on index 0)", r.Status.Primary)
	}
	if c := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetPrimaryAgreed); c == nil || c.Status != v1.ConditionTrue {
		t.Fatalf("PrimaryAgreed: %+v", r.Status.Conditions)
	}
	var initiates []fakemongo.Call
	for _, c := range set.Calls() {
		if c.Command == "replSetInitiate" {
			initiates = append(initiates, c)
		}
	}
	if len(initiates) != 1 || initiates[0].Member != "db-0.db:27017" || initiates[0].Code != 0 {
		t.Fatalf("replSetInitiate calls: %+v", initiates)
	}
	if cfg := fakes[0].Config(); len(cfg.Members) != 3 || len(cfg.Voters()) != 3 {
		t.Fatalf("config after converging on 3: %+v", cfg)
	}

	// 2. The primary dies (its container exits): status.primary moves to the member the fakes elect.
	old := set.Primary()
	oldName := nameOf[old]
	for i, m := range fakes {
		if m == old {
			old.Stop()
			e.updateStatus("db", func(s *v1.Service) { setMongoReplicas(s, 3, map[int]bool{i: true}) })
		}
	}
	r = waitFor("status.primary follows the new primary, agreed", func(r *v1.ReplicaSet) bool {
		p := set.Primary()
		c := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetPrimaryAgreed)
		return p != nil && p != old && r.Status.Primary == nameOf[p] && c != nil && c.Status == v1.ConditionTrue
	})
	if c := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetPrimaryAgreed); r.Status.Primary == oldName || c == nil || c.Status != v1.ConditionTrue {
		t.Fatalf("after failover: status.primary %q (was %q), PrimaryAgreed %+v", r.Status.Primary, oldName, c)
	}
	if m := r.Status.Members[0]; oldName == "db-0" && (m.Role != mongoengine.RoleUnreachable || m.Health != mongoengine.HealthUnhealthy) {
		t.Fatalf("dead member reported %+v", m)
	}
	// The dead member stays in the config (its node may come back).
	if cfg := set.Primary().Config(); len(cfg.Members) != 3 {
		t.Fatalf("config after the primary died: %+v", cfg)
	}
	// It returns as a secondary.
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	e.updateStatus("db", func(s *v1.Service) { setMongoReplicas(s, 3, nil) })
	waitFor("Ready again with the old primary back", func(r *v1.ReplicaSet) bool {
		return converged(3)(r) && r.Status.Primary != oldName
	})

	// 3. Scale the member Service to five: five members in the config, an odd voter count.
	for {
		cur := e.get(v1.KindService, "db").(*v1.Service)
		cur.Spec.Replicas = i32(5)
		_, err := e.st.Update(ctx, cur)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	e.updateStatus("db", func(s *v1.Service) { setMongoReplicas(s, 5, nil) })
	waitFor("5-member set Ready", converged(5))
	cfg := set.Primary().Config()
	if len(cfg.Members) != 5 {
		t.Fatalf("config after scaling to 5: %+v", cfg)
	}
	if v := len(cfg.Voters()); v%2 != 1 || v != 5 {
		t.Fatalf("%d voters after scaling to 5, want 5 (odd)", v)
	}
	for _, c := range set.Calls() {
		if (c.Command == "replSetReconfig" || c.Command == "replSetInitiate") && (c.Code != 0 || c.Force) {
			t.Fatalf("refused or forced config command: %+v", c)
		}
	}
}

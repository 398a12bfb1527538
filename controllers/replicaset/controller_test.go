package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
	"github.com/constellation-sh/constellation/pkg/store"
)

// fakeEngine records what it was asked and answers what the test sets.
type fakeEngine struct {
	mu      sync.Mutex
	calls   []replicaset.Desired
	obs     replicaset.Observation
	err     error
	closed  bool
	changed func()
}

func (f *fakeEngine) Reconcile(_ context.Context, d replicaset.Desired) (replicaset.Observation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, d)
	return f.obs, f.err
}

func (f *fakeEngine) Close() error { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }

func (f *fakeEngine) set(o replicaset.Observation) { f.mu.Lock(); f.obs = o; f.mu.Unlock() }

func (f *fakeEngine) last() (replicaset.Desired, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return replicaset.Desired{}, 0
	}
	return f.calls[len(f.calls)-1], len(f.calls)
}

func i32(n int32) *int32 { return &n }

func memberService(name string, n int) *v1.Service {
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
		Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ServiceSpec{Image: "redis:test", Replicas: i32(int32(n)),
			Ports: []v1.ServicePort{{Name: "metrics", ContainerPort: 9121}, {Name: "redis", ContainerPort: 6379}}}}
	return svc
}

func withStatus(svc *v1.Service, base int, nodes ...string) {
	for i, node := range nodes {
		svc.Status.ReplicaVirtualIPs = append(svc.Status.ReplicaVirtualIPs, v1.ReplicaVirtualIP{Index: int32(i), IP: fmt.Sprintf("10.213.0.%d", base+i)})
		svc.Status.ReplicaStatuses = append(svc.Status.ReplicaStatuses, v1.ReplicaStatus{Index: int32(i), Node: node, State: v1.ReplicaRunning, Health: v1.HealthHealthy})
	}
}

func node(name string) *v1.Node {
	return &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: name}}
}

func redisRS() *v1.ReplicaSet {
	return &v1.ReplicaSet{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindReplicaSet},
		Metadata: v1.ObjectMeta{Name: "cache"},
		Spec: v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"redis"},
			Redis: &v1.RedisReplicaSet{MasterName: "cache", Sentinel: "cache-sentinel",
				PasswordSecret: &v1.SecretKeyRef{Name: "redis-auth", Key: "password"}}}}
}

type env struct {
	t     *testing.T
	st    store.Store
	clk   *clocktesting.FakeClock
	eng   *fakeEngine
	ctl   *Controller
	built int
}

func newEnv(t *testing.T, objs ...v1.Object) *env {
	t.Helper()
	e := &env{t: t, st: store.NewMemory(), clk: clocktesting.NewFakeClock(time.Unix(1_000_000, 0)), eng: &fakeEngine{}}
	ctx := context.Background()
	for _, o := range objs {
		if _, err := e.st.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetMetadata().Name, err)
		}
	}
	var mu sync.Mutex
	ctl, err := New(Config{Store: e.st, Clock: e.clk, Poll: 20 * time.Millisecond, OffsetInterval: time.Minute,
		Engines: map[v1.Engine]EngineFactory{v1.EngineRedis: func(o replicaset.Options) (replicaset.Engine, error) {
			mu.Lock()
			e.built++
			e.eng.changed = o.Changed
			mu.Unlock()
			return e.eng, nil
		}}})
	if err != nil {
		t.Fatal(err)
	}
	e.ctl = ctl
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ctl.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func (e *env) get(kind, name string) v1.Object {
	o, err := e.st.Get(context.Background(), kind, name)
	if err != nil {
		return nil
	}
	return o
}

func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) rs() *v1.ReplicaSet {
	o := e.get(v1.KindReplicaSet, "cache")
	if o == nil {
		return nil
	}
	return o.(*v1.ReplicaSet)
}

// updateStatus sets a Service's status as the status and mesh controllers would.
func (e *env) updateStatus(name string, f func(*v1.Service)) {
	e.t.Helper()
	for {
		svc := e.get(v1.KindService, name).(*v1.Service)
		f(svc)
		_, err := e.st.UpdateStatus(context.Background(), svc)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		return
	}
}

func secret() *v1.Secret {
	return &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret},
		Metadata: v1.ObjectMeta{Name: "redis-auth"}, Spec: v1.SecretSpec{Data: v1.SecretData{"password": "s3cret"}}}
}

func TestControllerRedis(t *testing.T) {
	svc := memberService("redis", 3)
	e := newEnv(t, svc, node("n0"), node("n1"), node("n2"), secret(), redisRS())
	e.updateStatus("redis", func(s *v1.Service) { withStatus(s, 10, "n0", "n1", "n2") })

	// The sentinel Service: owned, one per node.
	e.eventually("sentinel Service created", func() bool { return e.get(v1.KindService, "cache-sentinel") != nil })
	sent := e.get(v1.KindService, "cache-sentinel").(*v1.Service)
	if *sent.Spec.Replicas != 3 || sent.Spec.Placement == nil || sent.Spec.Placement.MaxPerNode != 1 {
		t.Fatalf("sentinel spec: replicas %d placement %+v, want 3 and maxPerNode 1", *sent.Spec.Replicas, sent.Spec.Placement)
	}
	if sent.Spec.Image != "redis:test" || sent.Spec.Command[0] != "redis-sentinel" || sent.Spec.Ports[0].ContainerPort != 26379 {
		t.Fatalf("sentinel spec: %+v", sent.Spec)
	}
	if len(sent.Metadata.OwnerReferences) != 1 || sent.Metadata.OwnerReferences[0].Kind != v1.KindReplicaSet {
		t.Fatalf("sentinel owner: %+v", sent.Metadata.OwnerReferences)
	}
	e.updateStatus("cache-sentinel", func(s *v1.Service) { withStatus(s, 20, "n0", "n1", "n2") })

	e.eng.set(replicaset.Observation{Primary: "redis-1", PrimaryAgreed: true,
		Members: []v1.MemberStatus{{Name: "redis-0", Role: "replica", Health: "healthy", Offset: 5},
			{Name: "redis-1", Role: "master", Health: "healthy", Offset: 5}, {Name: "redis-2", Role: "replica", Health: "healthy", Offset: 5}},
		Conditions: []v1.Condition{{Type: v1.ReplicaSetReady, Status: v1.ConditionTrue, Reason: "AllMembersHealthy"},
			{Type: v1.ReplicaSetPrimaryAgreed, Status: v1.ConditionTrue, Reason: "Agreed"}}})
	e.eventually("status.primary written", func() bool { r := e.rs(); return r != nil && r.Status.Primary == "redis-1" })

	d, _ := e.eng.last()
	if len(d.Members) != 3 || d.Members[2].Host != "redis-2.redis" || d.Members[2].Dial != "10.213.0.12:6379" || !d.Members[2].Ready || d.Members[2].Node != "n2" {
		t.Fatalf("members: %+v", d.Members)
	}
	if len(d.Sentinels) != 3 || d.Sentinels[0].Host != "cache-sentinel-0.cache-sentinel" || d.Sentinels[0].Dial != "10.213.0.20:26379" {
		t.Fatalf("sentinels: %+v", d.Sentinels)
	}
	if d.Secrets["password"] != "s3cret" {
		t.Fatal("password not read from the Secret")
	}
	r := e.rs()
	if len(r.Status.Members) != 3 || r.Status.Members[1].Role != "master" {
		t.Fatalf("members status: %+v", r.Status.Members)
	}
	if c := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetPrimaryAgreed); c == nil || c.Status != v1.ConditionTrue {
		t.Fatalf("conditions: %+v", r.Status.Conditions)
	}

	// Offsets alone are not written before OffsetInterval; a role change is.
	rv := r.Metadata.ResourceVersion
	obs := e.eng.obs
	obs.Members = []v1.MemberStatus{{Name: "redis-0", Role: "replica", Health: "healthy", Offset: 900},
		{Name: "redis-1", Role: "master", Health: "healthy", Offset: 900}, {Name: "redis-2", Role: "replica", Health: "healthy", Offset: 900}}
	e.eng.set(obs)
	_, n := e.eng.last()
	e.eventually("a few more reconciles", func() bool { _, m := e.eng.last(); return m >= n+5 })
	if got := e.rs().Metadata.ResourceVersion; got != rv {
		t.Fatalf("offset-only change written before OffsetInterval (rv %s → %s)", rv, got)
	}
	e.clk.Step(2 * time.Minute)
	e.eventually("offsets written after OffsetInterval", func() bool { return e.rs().Status.Members[0].Offset == 900 })

	// A node more: one sentinel more.
	if _, err := e.st.Create(context.Background(), node("n3")); err != nil {
		t.Fatal(err)
	}
	e.eventually("sentinel replicas follow the node count", func() bool {
		return *e.get(v1.KindService, "cache-sentinel").(*v1.Service).Spec.Replicas == 4
	})

	// A cordoned node drains its member.
	n0 := e.get(v1.KindNode, "n0").(*v1.Node)
	n0.Spec.Unschedulable = true
	if _, err := e.st.Update(context.Background(), n0); err != nil {
		t.Fatal(err)
	}
	e.eventually("member on the cordoned node is draining", func() bool { d, _ := e.eng.last(); return len(d.Members) == 3 && d.Members[0].Draining })

	// Engine's Changed enqueues at once (no poll needed): covered by the loop; deleting the
	// ReplicaSet deletes the sentinel Service it owns and closes the engine.
	cur := e.rs()
	if _, err := e.st.Delete(context.Background(), v1.KindReplicaSet, "cache", cur.Metadata.ResourceVersion); err != nil {
		t.Fatal(err)
	}
	e.eventually("sentinel Service deleted with its ReplicaSet", func() bool { return e.get(v1.KindService, "cache-sentinel") == nil })
	e.eventually("engine closed", func() bool { e.eng.mu.Lock(); defer e.eng.mu.Unlock(); return e.eng.closed })
}

func TestControllerRefusesForeignSentinelService(t *testing.T) {
	foreign := memberService("cache-sentinel", 1)
	e := newEnv(t, memberService("redis", 3), foreign, node("n0"), secret(), redisRS())
	e.eventually("condition SentinelServiceNotOwned", func() bool {
		r := e.rs()
		c := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetReady)
		return c != nil && c.Reason == "SentinelServiceNotOwned"
	})
	s := e.get(v1.KindService, "cache-sentinel").(*v1.Service)
	if s.Spec.Image != "redis:test" || *s.Spec.Replicas != 1 || len(s.Metadata.OwnerReferences) != 0 {
		t.Fatalf("a Service the ReplicaSet does not own was changed: %+v", s)
	}
	if _, n := e.eng.last(); n != 0 {
		t.Fatal("engine ran without a sentinel Service")
	}
}

func TestControllerConditionsWithoutEngine(t *testing.T) {
	mongo := &v1.ReplicaSet{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindReplicaSet},
		Metadata: v1.ObjectMeta{Name: "cache"},
		Spec:     v1.ReplicaSetSpec{Engine: v1.EngineMongo, Members: []string{"redis"}, Mongo: &v1.MongoReplicaSet{ReplSetName: "rs0"}}}
	e := newEnv(t, memberService("redis", 3), mongo)
	e.eventually("EngineUnavailable", func() bool {
		c := v1.FindCondition(e.rs().Status.Conditions, v1.ReplicaSetReady)
		return c != nil && c.Reason == "EngineUnavailable" && c.Status == v1.ConditionFalse
	})

	e2 := newEnv(t, node("n0"), redisRS())
	e2.eventually("MemberServiceMissing", func() bool {
		c := v1.FindCondition(e2.rs().Status.Conditions, v1.ReplicaSetReady)
		return c != nil && c.Reason == "MemberServiceMissing"
	})

	e3 := newEnv(t, memberService("redis", 1), node("n0"), redisRS())
	e3.eventually("SecretUnavailable", func() bool {
		c := v1.FindCondition(e3.rs().Status.Conditions, v1.ReplicaSetReady)
		return c != nil && c.Reason == "SecretUnavailable"
	})
}

func TestBuildMembers(t *testing.T) {
	svc := memberService("db", 3)
	withStatus(svc, 10, "n0", "n1", "n2")
	svc.Status.ReplicaStatuses[1].State = v1.ReplicaExited
	svc.Status.ReplicaStatuses[2].Health = v1.HealthUnhealthy
	svc.Status.ReplicaVirtualIPs = svc.Status.ReplicaVirtualIPs[:2] // index 2 has no address yet
	ms := buildMembers(svc, 0, map[string]bool{"n1": true}, nil)
	want := []replicaset.Member{
		{Name: "db-0", Index: 0, Host: "db-0.db", Port: 6379, Dial: "10.213.0.10:6379", Ready: true, Node: "n0"},
		{Name: "db-1", Index: 1, Host: "db-1.db", Port: 6379, Dial: "10.213.0.11:6379", Ready: false, Node: "n1", Draining: true},
		{Name: "db-2", Index: 2, Host: "db-2.db", Port: 6379, Ready: false, Node: "n2"},
	}
	if fmt.Sprint(ms) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", ms, want)
	}
}

func TestStatusChanged(t *testing.T) {
	base := v1.ReplicaSetStatus{Primary: "db-0", Members: []v1.MemberStatus{{Name: "db-0", Role: "master", Health: "healthy", Offset: 1}}}
	tests := []struct {
		name                 string
		mod                  func(*v1.ReplicaSetStatus)
		changed, offsetsOnly bool
	}{
		{"same", func(*v1.ReplicaSetStatus) {}, false, false},
		{"offset", func(s *v1.ReplicaSetStatus) { s.Members[0].Offset = 2 }, true, true},
		{"primary", func(s *v1.ReplicaSetStatus) { s.Primary = "db-1" }, true, false},
		{"health and offset", func(s *v1.ReplicaSetStatus) { s.Members[0].Offset, s.Members[0].Health = 3, "unreachable" }, true, false},
		{"condition", func(s *v1.ReplicaSetStatus) {
			s.Conditions = []v1.Condition{{Type: v1.ReplicaSetReady, Status: v1.ConditionTrue}}
		}, true, false},
	}
	for _, tt := range tests {
		next := base
		next.Members = append([]v1.MemberStatus(nil), base.Members...)
		tt.mod(&next)
		c, o := statusChanged(base, next)
		if c != tt.changed || o != tt.offsetsOnly {
			t.Errorf("%s: changed %v offsetsOnly %v, want %v %v", tt.name, c, o, tt.changed, tt.offsetsOnly)
		}
	}
	// The last primary is kept when the engine reports none.
	if s := statusFor(base, 1, replicaset.Observation{}); s.Primary != "db-0" || s.ObservedGeneration != 1 {
		t.Fatalf("statusFor: %+v", s)
	}
}

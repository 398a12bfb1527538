package mongo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
	fakemongo "github.com/constellation-sh/constellation/test/fakes/mongo"
)

// cluster is a fake replica set of up to n "db" replicas and an engine pointed at them.
type cluster struct {
	t       *testing.T
	set     *fakemongo.Set
	fakes   []*fakemongo.Member
	eng     replicaset.Engine
	rs      *v1.ReplicaSet
	ready   map[int]bool
	primary string // status.primary as a controller would record it

	dialMu sync.Mutex
	dialed map[string]int // addresses Options.Dial was called with
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, set: fakemongo.NewSet("rs0"), ready: map[int]bool{}, dialed: map[string]int{}}
	t.Cleanup(c.set.Close)
	for i := range n {
		m, err := c.set.AddMember(fmt.Sprintf("db-%d.db:27017", i))
		if err != nil {
			t.Fatal(err)
		}
		c.fakes = append(c.fakes, m)
		c.ready[i] = true
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dialMu.Lock()
		c.dialed[addr]++
		c.dialMu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	eng, err := NewEngine(replicaset.Options{Name: "rs", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Timeout: time.Second, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	c.eng = eng
	c.rs = &v1.ReplicaSet{Metadata: v1.ObjectMeta{Name: "rs"}, Spec: v1.ReplicaSetSpec{
		Engine: v1.EngineMongo, Members: []string{"db"}, Mongo: &v1.MongoReplicaSet{ReplSetName: "rs0"}}}
	return c
}

func (c *cluster) desired(replicas int) replicaset.Desired {
	d := replicaset.Desired{ReplicaSet: c.rs, LastPrimary: c.primary, Now: time.Unix(1700000000, 0)}
	for i := range replicas {
		d.Members = append(d.Members, replicaset.Member{
			Name: fmt.Sprintf("db-%d", i), Index: i, Host: fmt.Sprintf("db-%d.db", i), Port: 27017,
			Dial: c.fakes[i].Addr(), Ready: c.ready[i], Node: fmt.Sprintf("n%d", i)})
	}
	return d
}

func (c *cluster) reconcile(d replicaset.Desired) (replicaset.Observation, error) {
	c.t.Helper()
	obs, err := c.eng.Reconcile(context.Background(), d)
	if obs.Primary != "" && obs.PrimaryAgreed {
		c.primary = obs.Primary
	}
	return obs, err
}

func ready(obs replicaset.Observation) *v1.Condition {
	for i := range obs.Conditions {
		if obs.Conditions[i].Type == v1.ReplicaSetReady {
			return &obs.Conditions[i]
		}
	}
	return nil
}

// converge reconciles until Ready is True, failing after max steps or on any error.
func (c *cluster) converge(replicas, max int) replicaset.Observation {
	c.t.Helper()
	var obs replicaset.Observation
	for i := 0; i < max; i++ {
		var err error
		obs, err = c.reconcile(c.desired(replicas))
		if err != nil {
			c.t.Fatalf("step %d: %v", i, err)
		}
		if r := ready(obs); r != nil && r.Status == v1.ConditionTrue {
			return obs
		}
	}
	c.t.Fatalf("not converged to %d members in %d steps: %+v", replicas, max, obs)
	return obs
}

func (c *cluster) calls(command string) []fakemongo.Call {
	var out []fakemongo.Call
	for _, call := range c.set.Calls() {
		if call.Command == command {
			out = append(out, call)
		}
	}
	return out
}

func TestInitiateOnceOnIndexZero(t *testing.T) {
	c := newCluster(t, 3)
	obs, err := c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Actions) != 1 || obs.Actions[0] != "replSetInitiate on db-0" {
		t.Fatalf("actions = %v", obs.Actions)
	}
	inits := c.calls("replSetInitiate")
	if len(inits) != 1 || inits[0].Member != "db-0.db:27017" || len(inits[0].Voters) != 1 {
		t.Fatalf("initiate calls = %+v", inits)
	}
	obs = c.converge(3, 10)
	if obs.Primary != "db-0" || !obs.PrimaryAgreed {
		t.Fatalf("primary = %q agreed %v", obs.Primary, obs.PrimaryAgreed)
	}
	if n := len(c.calls("replSetInitiate")); n != 1 {
		t.Fatalf("%d replSetInitiate calls, want 1", n)
	}
	// Every connection went through Options.Dial, to the members' Dial addresses.
	c.dialMu.Lock()
	for _, f := range c.fakes {
		if c.dialed[f.Addr()] == 0 {
			t.Errorf("%s never dialed through Options.Dial", f.Host)
		}
	}
	c.dialMu.Unlock()
	for i, m := range obs.Members {
		want := RoleSecondary
		if i == 0 {
			want = RolePrimary
		}
		if m.Role != want || m.Health != HealthHealthy {
			t.Errorf("member %d = %+v", i, m)
		}
	}
}

// TestInitiateAlreadyInitialized: a member that was initiated between the engine's look and its
// replSetInitiate (another controller, a restart) answers AlreadyInitialized: success.
func TestInitiateAlreadyInitialized(t *testing.T) {
	c := newCluster(t, 1)
	d := c.desired(1)
	e := c.eng.(*Engine)
	s := &step{e: e, d: d, spec: c.rs.Spec.Mongo, byHost: map[string]*probe{}, names: map[string]string{}}
	s.probes = e.probeAll(context.Background(), d.Members) // uninitialized
	if _, err := c.reconcile(d); err != nil {              // initiates
		t.Fatal(err)
	}
	if err := s.initiate(context.Background()); err != nil {
		t.Fatalf("initiate on an initiated member: %v", err)
	}
	if len(s.obs.Actions) != 0 {
		t.Fatalf("actions %v for an already initialized member", s.obs.Actions)
	}
	inits := c.calls("replSetInitiate")
	if len(inits) != 2 || inits[1].Code != fakemongo.CodeAlreadyInitialized {
		t.Fatalf("calls = %+v, want the second answered AlreadyInitialized", inits)
	}
}

func TestNoInitiateOverARecordedPrimary(t *testing.T) {
	c := newCluster(t, 1)
	c.primary = "db-0"
	obs, err := c.reconcile(c.desired(1))
	if err != nil {
		t.Fatal(err)
	}
	if r := ready(obs); r == nil || r.Reason != ReasonNotInitiated {
		t.Fatalf("condition = %+v", r)
	}
	if n := len(c.calls("replSetInitiate")); n != 0 {
		t.Fatalf("%d replSetInitiate calls", n)
	}
}

func TestScale1To3To5To4(t *testing.T) {
	c := newCluster(t, 5)
	for _, tc := range []struct{ replicas, voters int }{{1, 1}, {3, 3}, {5, 5}, {4, 3}} {
		obs := c.converge(tc.replicas, 20)
		cfg := c.fakes[0].Config()
		if len(cfg.Members) != tc.replicas {
			t.Fatalf("%d replicas: config has %d members", tc.replicas, len(cfg.Members))
		}
		if v := len(cfg.Voters()); v != tc.voters {
			t.Fatalf("%d replicas: %d voters, want %d", tc.replicas, v, tc.voters)
		}
		for _, m := range cfg.Members {
			if m.Votes == 0 && m.Priority != 0 {
				t.Fatalf("non-voter %s has priority %g", m.Host, m.Priority)
			}
		}
		if obs.Primary != "db-0" {
			t.Fatalf("primary %q", obs.Primary)
		}
	}
	// Every reconfig the engine sent changed at most one vote and was accepted.
	var prev []string
	for _, call := range c.set.Calls() {
		if call.Command != "replSetInitiate" && call.Command != "replSetReconfig" {
			continue
		}
		if call.Code != 0 || call.Force {
			t.Fatalf("call %+v", call)
		}
		if d := symDiff(prev, call.Voters); d > 1 {
			t.Fatalf("reconfig to version %d changed %d votes (%v -> %v)", call.Version, d, prev, call.Voters)
		}
		prev = call.Voters
	}
	if got := c.fakes[4].Config(); got == nil {
		t.Fatal("db-4 never got a config")
	}
	// db-4 is out of the set: it reports itself removed, and the engine no longer lists it.
	obs := c.converge(4, 3)
	if len(obs.Members) != 4 {
		t.Fatalf("members %+v", obs.Members)
	}
}

func symDiff(a, b []string) int {
	in := map[string]int{}
	for _, x := range a {
		in[x]++
	}
	for _, x := range b {
		in[x]--
	}
	n := 0
	for _, v := range in {
		if v != 0 {
			n++
		}
	}
	return n
}

func TestRemovingThePrimaryStepsItDownFirst(t *testing.T) {
	c := newCluster(t, 3)
	c.converge(3, 20)
	// Desired: db-1 and db-2 only (db-0, the primary, is going away).
	d := c.desired(3)
	d.Members = d.Members[1:]
	var obs replicaset.Observation
	for i := 0; i < 10; i++ {
		var err error
		if obs, err = c.reconcile(d); err != nil {
			t.Fatal(err)
		}
		if r := ready(obs); r != nil && r.Status == v1.ConditionTrue {
			break
		}
	}
	if r := ready(obs); r == nil || r.Status != v1.ConditionTrue {
		t.Fatalf("not converged: %+v", obs)
	}
	if len(c.calls("replSetStepDown")) != 1 {
		t.Fatalf("stepdowns: %+v", c.calls("replSetStepDown"))
	}
	cfg := c.fakes[1].Config()
	if _, ok := memberOf(cfg, "db-0.db:27017"); ok || len(cfg.Voters()) != 1 {
		t.Fatalf("config after removing db-0: %+v", cfg)
	}
	if obs.Primary != "db-1" {
		t.Fatalf("primary %q", obs.Primary)
	}
}

func memberOf(cfg *fakemongo.Config, host string) (fakemongo.ConfigMember, bool) {
	for _, m := range cfg.Members {
		if m.Host == host {
			return m, true
		}
	}
	return fakemongo.ConfigMember{}, false
}

func TestPrimaryLossReportsTheNewPrimary(t *testing.T) {
	c := newCluster(t, 3)
	c.converge(3, 20)
	c.fakes[0].Stop()
	c.ready[0] = false
	obs, err := c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if obs.Primary != "db-1" || !obs.PrimaryAgreed {
		t.Fatalf("after the primary died: primary %q agreed %v", obs.Primary, obs.PrimaryAgreed)
	}
	if m := obs.Members[0]; m.Role != RoleUnreachable || m.Health != HealthUnhealthy {
		t.Fatalf("dead member = %+v", m)
	}
	if len(c.fakes[1].Config().Members) != 3 {
		t.Fatal("a member whose node is down was removed from the config")
	}
	if r := ready(obs); r == nil || r.Status != v1.ConditionFalse || r.Reason != ReasonMembersPending {
		t.Fatalf("Ready = %+v", r)
	}
	// It comes back as a secondary.
	if err := c.fakes[0].Start(); err != nil {
		t.Fatal(err)
	}
	c.ready[0] = true
	obs = c.converge(3, 20)
	if obs.Primary != "db-1" || obs.Members[0].Role != RoleSecondary {
		t.Fatalf("after db-0 returned: %+v", obs)
	}
}

func TestPrimaryNotAgreedDuringAPartition(t *testing.T) {
	c := newCluster(t, 3)
	c.converge(3, 20)
	// db-0 loses db-1 and db-2 (it steps down); they elect db-1. The engine still reaches all.
	c.set.Isolate(c.fakes[0])
	obs, err := c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if obs.Primary != "db-1" || !obs.PrimaryAgreed {
		t.Fatalf("primary %q agreed %v", obs.Primary, obs.PrimaryAgreed)
	}
}

// TestWrongMemberAtADialAddress: a Dial address that leads to another member (a stale virtual
// IP) is not taken for the member it was meant for: db-1's address leading to the primary db-0
// does not make db-1 a second primary.
func TestWrongMemberAtADialAddress(t *testing.T) {
	c := newCluster(t, 3)
	c.converge(3, 20)
	d := c.desired(3)
	d.Members[1].Dial = d.Members[0].Dial
	obs, err := c.reconcile(d)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Primary != "db-0" || !obs.PrimaryAgreed {
		t.Fatalf("primary %q agreed %v", obs.Primary, obs.PrimaryAgreed)
	}
	if len(obs.Actions) != 0 {
		t.Fatalf("actions %v", obs.Actions)
	}
}

func TestNoForceWithoutOptIn(t *testing.T) {
	c := newCluster(t, 3)
	c.converge(3, 20)
	c.fakes[1].Stop()
	c.fakes[2].Stop()
	c.ready[1], c.ready[2] = false, false
	obs, err := c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if obs.Primary != "" || obs.PrimaryAgreed {
		t.Fatalf("primary %q with a majority gone", obs.Primary)
	}
	r := ready(obs)
	if r == nil || r.Reason != ReasonMajorityLost || !strings.Contains(r.Message, "allowForceReconfig") {
		t.Fatalf("Ready = %+v", r)
	}
	for _, call := range c.calls("replSetReconfig") {
		if call.Force {
			t.Fatalf("forced reconfig without the opt-in: %+v", call)
		}
	}
}

func TestForceWithOptInOnlyWhenAMajorityIsKnownGone(t *testing.T) {
	c := newCluster(t, 3)
	c.rs.Spec.Mongo.AllowForceReconfig = true
	c.converge(3, 20)
	c.fakes[1].Stop()
	c.fakes[2].Stop()
	// Their replicas still count as running: unreachable, maybe a partition. No force.
	obs, err := c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if r := ready(obs); r == nil || r.Reason != ReasonNoPrimary {
		t.Fatalf("Ready = %+v", r)
	}
	if n := forced(c); n != 0 {
		t.Fatalf("%d forced reconfigs while the gone members' replicas are running", n)
	}
	// Now their nodes are known dead.
	c.ready[1], c.ready[2] = false, false
	obs, err = c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if r := ready(obs); r == nil || r.Reason != ReasonForcedReconfig {
		t.Fatalf("Ready = %+v", r)
	}
	if n := forced(c); n != 1 {
		t.Fatalf("%d forced reconfigs, want 1", n)
	}
	if c.set.Primary() != c.fakes[0] {
		t.Fatal("db-0 not primary after the forced reconfig")
	}
	obs, err = c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if obs.Primary != "db-0" || !obs.PrimaryAgreed {
		t.Fatalf("primary %q agreed %v", obs.Primary, obs.PrimaryAgreed)
	}
	// The lost members come back (empty, in Constellation's terms) and are added one at a time.
	for _, i := range []int{1, 2} {
		if err := c.fakes[i].Start(); err != nil {
			t.Fatal(err)
		}
		c.ready[i] = true
	}
	c.converge(3, 20)
	if v := len(c.fakes[0].Config().Voters()); v != 3 {
		t.Fatalf("%d voters after the members returned", v)
	}
	if n := forced(c); n != 1 {
		t.Fatalf("%d forced reconfigs, want still 1", n)
	}
}

func TestNoForceOntoAnEmptyMember(t *testing.T) {
	c := newCluster(t, 3)
	c.rs.Spec.Mongo.AllowForceReconfig = true
	c.converge(3, 20)
	c.fakes[1].Stop()
	c.fakes[2].Stop()
	c.ready[1], c.ready[2] = false, false
	d := c.desired(3)
	d.Members[0].EmptyData = true // db-0 answers, but its replica was re-created on an empty volume
	obs, err := c.reconcile(d)
	if err != nil {
		t.Fatal(err)
	}
	if r := ready(obs); r == nil || r.Reason != ReasonMajorityLost || !strings.Contains(r.Message, "no electable survivor") {
		t.Fatalf("Ready = %+v", r)
	}
	if n := forced(c); n != 0 {
		t.Fatalf("%d forced reconfigs onto an empty member", n)
	}
}

func forced(c *cluster) int {
	n := 0
	for _, call := range c.calls("replSetReconfig") {
		if call.Force {
			n++
		}
	}
	return n
}

func TestWaitsForCommitBeforeTheNextStep(t *testing.T) {
	c := newCluster(t, 3)
	c.converge(3, 20)
	c.fakes[1].StallConfigs(true)
	c.fakes[2].StallConfigs(true)
	c.rs.Spec.Mongo.Priorities = map[string]float64{"db": 2}
	obs, err := c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if r := ready(obs); r == nil || r.Reason != ReasonWaitingForCommit {
		t.Fatalf("Ready = %+v", r)
	}
	before := len(c.calls("replSetReconfig"))
	obs, err = c.reconcile(c.desired(3))
	if err != nil {
		t.Fatal(err)
	}
	if r := ready(obs); r == nil || r.Reason != ReasonWaitingForCommit {
		t.Fatalf("Ready = %+v", r)
	}
	if n := len(c.calls("replSetReconfig")); n != before {
		t.Fatalf("a reconfig was sent while the previous config was not committed")
	}
	c.fakes[1].StallConfigs(false)
	c.converge(3, 20)
	for _, m := range c.fakes[0].Config().Members {
		if m.Priority != 2 {
			t.Fatalf("priority of %s = %g", m.Host, m.Priority)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	t.Run("configuration in progress is transient", func(t *testing.T) {
		c := newCluster(t, 2)
		c.converge(1, 10)
		c.fakes[0].SetInstalling(true)
		obs, err := c.reconcile(c.desired(2))
		if err != nil {
			t.Fatalf("ConfigurationInProgress returned an error: %v", err)
		}
		if r := ready(obs); r == nil || !strings.Contains(r.Message, "ConfigurationInProgress") {
			t.Fatalf("Ready = %+v", r)
		}
		c.fakes[0].SetInstalling(false)
		c.converge(2, 10)
	})
	t.Run("a rejected initiate is an error", func(t *testing.T) {
		c := newCluster(t, 1)
		c.rs.Spec.Mongo.ReplSetName = "other"
		obs, err := c.reconcile(c.desired(1))
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("err = %v, want ErrInvalidConfig", err)
		}
		if r := ready(obs); r == nil || r.Status != v1.ConditionFalse {
			t.Fatalf("Ready = %+v", r)
		}
	})
	t.Run("unreachable index 0 waits", func(t *testing.T) {
		c := newCluster(t, 1)
		c.fakes[0].Stop()
		obs, err := c.reconcile(c.desired(1))
		if err != nil {
			t.Fatal(err)
		}
		if r := ready(obs); r == nil || r.Reason != ReasonInitiating || obs.Members[0].Health != HealthUnhealthy {
			t.Fatalf("obs = %+v", obs)
		}
	})
}

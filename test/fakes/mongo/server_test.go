package mongo

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func newSet(t *testing.T, hosts ...string) (*Set, []*Member) {
	t.Helper()
	s := NewSet("rs0")
	t.Cleanup(s.Close)
	var ms []*Member
	for _, h := range hosts {
		m, err := s.AddMember(h)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return s, ms
}

// client connects the real driver directly to one member.
func client(t *testing.T, m *Member) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + m.Addr()).SetDirect(true).
		SetServerSelectionTimeout(2 * time.Second).SetHeartbeatInterval(500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

func run(t *testing.T, c *mongo.Client, cmd bson.D) (bson.M, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out bson.M
	err := c.Database("admin").RunCommand(ctx, cmd).Decode(&out)
	return out, err
}

func code(err error) int32 {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

func cfgDoc(version int, members ...bson.D) bson.D {
	ms := bson.A{}
	for _, m := range members {
		ms = append(ms, m)
	}
	return bson.D{{Key: "_id", Value: "rs0"}, {Key: "version", Value: version}, {Key: "members", Value: ms}}
}

func mem(id int, host string, votes int, prio float64) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "host", Value: host}, {Key: "votes", Value: votes}, {Key: "priority", Value: prio}}
}

func TestDriverHandshakeBeforeInitiate(t *testing.T) {
	_, ms := newSet(t, "db-0.db:27017")
	c := client(t, ms[0])
	if err := c.Ping(context.Background(), nil); err != nil {
		t.Fatalf("ping through the real driver: %v", err)
	}
	h, err := run(t, c, bson.D{{Key: "hello", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if h["isWritablePrimary"] != false || h["isreplicaset"] != true {
		t.Fatalf("hello before initiate = %v", h)
	}
	if _, err := run(t, c, bson.D{{Key: "replSetGetStatus", Value: 1}}); code(err) != CodeNotYetInitialized {
		t.Fatalf("replSetGetStatus before initiate: %v, want code 94", err)
	}
	if _, err := run(t, c, bson.D{{Key: "noSuchThing", Value: 1}}); code(err) != CodeCommandNotFound {
		t.Fatalf("unknown command: %v, want 59", err)
	}
	// The driver opens each connection with the legacy OP_QUERY isMaster and then speaks OP_MSG.
	reqs := ms[0].set.Requests()
	if reqs["OP_QUERY isMaster"] == 0 || reqs["OP_MSG hello"] == 0 || reqs["OP_MSG ping"] == 0 {
		t.Fatalf("requests = %v", reqs)
	}
}

func TestInitiateElectsAndIsIdempotent(t *testing.T) {
	s, ms := newSet(t, "db-0.db:27017")
	c := client(t, ms[0])
	if _, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: cfgDoc(1, mem(0, "db-0.db:27017", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	if s.Primary() != ms[0] {
		t.Fatal("the only member is not primary after initiate")
	}
	_, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: cfgDoc(1, mem(0, "db-0.db:27017", 1, 1))}})
	if code(err) != CodeAlreadyInitialized {
		t.Fatalf("second initiate: %v, want 23", err)
	}
	st, err := run(t, c, bson.D{{Key: "replSetGetStatus", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if st["myState"] != int32(1) || st["set"] != "rs0" {
		t.Fatalf("status = %v", st)
	}
	h, _ := run(t, c, bson.D{{Key: "hello", Value: 1}})
	if h["isWritablePrimary"] != true || h["setName"] != "rs0" || h["me"] != "db-0.db:27017" {
		t.Fatalf("hello = %v", h)
	}
}

func TestInitiateRejections(t *testing.T) {
	_, ms := newSet(t, "db-0.db:27017", "db-1.db:27017")
	c := client(t, ms[0])
	for _, tc := range []struct {
		name string
		cfg  bson.D
		code int32
	}{
		{"wrong set name", bson.D{{Key: "_id", Value: "other"}, {Key: "members", Value: bson.A{mem(0, "db-0.db:27017", 1, 1)}}}, CodeInvalidReplicaSetConfig},
		{"not in config", cfgDoc(1, mem(0, "db-1.db:27017", 1, 1)), CodeInvalidReplicaSetConfig},
		{"votes 0 priority 1", cfgDoc(1, mem(0, "db-0.db:27017", 1, 1), mem(1, "db-1.db:27017", 0, 1)), CodeInvalidReplicaSetConfig},
		{"duplicate host", cfgDoc(1, mem(0, "db-0.db:27017", 1, 1), mem(1, "db-0.db:27017", 1, 1)), CodeInvalidReplicaSetConfig},
		{"unknown member", cfgDoc(1, mem(0, "db-0.db:27017", 1, 1), mem(1, "db-9.db:27017", 1, 1)), CodeNodeNotFound},
	} {
		if _, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: tc.cfg}}); code(err) != tc.code {
			t.Errorf("%s: %v, want code %d", tc.name, err, tc.code)
		}
	}
}

func TestReconfigRules(t *testing.T) {
	s, ms := newSet(t, "a:1", "b:1", "c:1")
	c := client(t, ms[0])
	if _, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: cfgDoc(1, mem(0, "a:1", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	// Two voters at once: mongod's one-voting-change rule.
	_, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: cfgDoc(2, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1), mem(2, "c:1", 1, 1))}})
	if code(err) != CodeNewReplicaSetConfigurationIncompatible {
		t.Fatalf("two voting changes: %v, want 103", err)
	}
	// Version not greater.
	_, err = run(t, c, bson.D{{Key: "replSetReconfig", Value: cfgDoc(1, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1))}})
	if code(err) != CodeNewReplicaSetConfigurationIncompatible {
		t.Fatalf("same version: %v, want 103", err)
	}
	if _, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: cfgDoc(2, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	if got := ms[1].Config(); got == nil || got.Version != 2 {
		t.Fatalf("b did not receive the config: %+v", got)
	}
	// On a secondary.
	cb := client(t, ms[1])
	_, err = run(t, cb, bson.D{{Key: "replSetReconfig", Value: cfgDoc(3, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1), mem(2, "c:1", 1, 1))}})
	if code(err) != CodeNotWritablePrimary {
		t.Fatalf("reconfig on a secondary: %v, want 10107", err)
	}
	// In-progress install.
	ms[0].SetInstalling(true)
	_, err = run(t, c, bson.D{{Key: "replSetReconfig", Value: cfgDoc(3, mem(0, "a:1", 1, 2), mem(1, "b:1", 1, 1))}})
	if p := s.Primary(); p != ms[0] {
		t.Fatalf("primary = %v", p)
	}
	if code(err) != CodeConfigurationInProgress {
		t.Fatalf("reconfig while installing: %v, want 109", err)
	}
	ms[0].SetInstalling(false)
}

func TestReconfigWaitsForCommit(t *testing.T) {
	s, ms := newSet(t, "a:1", "b:1", "c:1")
	c := client(t, ms[0])
	if _, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: cfgDoc(1, mem(0, "a:1", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []bson.D{
		cfgDoc(2, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1)),
		cfgDoc(3, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1), mem(2, "c:1", 1, 1)),
	} {
		if _, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: cfg}}); err != nil {
			t.Fatal(err)
		}
	}
	ms[1].StallConfigs(true)
	ms[2].StallConfigs(true)
	// A priority change: installed on a, but no other voter takes it.
	v4 := cfgDoc(4, mem(0, "a:1", 1, 2), mem(1, "b:1", 1, 1), mem(2, "c:1", 1, 1))
	_, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: v4}, {Key: "maxTimeMS", Value: 100}})
	if code(err) != CodeMaxTimeMSExpired {
		t.Fatalf("reconfig that cannot propagate: %v, want 50", err)
	}
	if ms[0].Config().Version != 4 {
		t.Fatal("the primary did not install version 4")
	}
	v5 := cfgDoc(5, mem(0, "a:1", 1, 3), mem(1, "b:1", 1, 1), mem(2, "c:1", 1, 1))
	_, err = run(t, c, bson.D{{Key: "replSetReconfig", Value: v5}, {Key: "maxTimeMS", Value: 100}})
	if code(err) != CodeCurrentConfigNotCommittedYet {
		t.Fatalf("reconfig while the previous is uncommitted: %v, want 308", err)
	}
	if ms[0].Config().Version != 4 {
		t.Fatal("the rejected reconfig was installed")
	}
	ms[1].StallConfigs(false)
	if _, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: v5}, {Key: "maxTimeMS", Value: 1000}}); err != nil {
		t.Fatalf("after b caught up: %v", err)
	}
	if s.Primary() != ms[0] {
		t.Fatal("a lost primaryship")
	}
}

func TestElectionOnPrimaryLoss(t *testing.T) {
	s, ms := newSet(t, "a:1", "b:1", "c:1")
	c := client(t, ms[0])
	if _, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: cfgDoc(1, mem(0, "a:1", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []bson.D{
		cfgDoc(2, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1)),
		cfgDoc(3, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1), mem(2, "c:1", 1, 5)),
	} {
		if _, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: cfg}}); err != nil {
			t.Fatal(err)
		}
	}
	if s.Primary() != ms[2] {
		t.Fatalf("priority takeover: primary = %v, want c", s.Primary())
	}
	term := s.Term()
	ms[2].Stop()
	if p := s.Primary(); p != ms[0] {
		t.Fatalf("after c died primary = %v, want a (lowest _id of equal priority)", p)
	}
	if s.Term() <= term {
		t.Fatal("no new term")
	}
	if err := ms[2].Start(); err != nil {
		t.Fatal(err)
	}
	if s.Primary() != ms[2] {
		t.Fatal("c did not take over again after its restart")
	}
	s.Isolate(ms[2])
	if s.Primary() != ms[0] {
		t.Fatalf("primary = %v with c isolated, want a", s.Primary())
	}
	cb := client(t, ms[1])
	st, err := run(t, cb, bson.D{{Key: "replSetGetStatus", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, mm := range st["members"].(bson.A) {
		var m bson.M
		raw, _ := bson.Marshal(mm)
		_ = bson.Unmarshal(raw, &m)
		if want := m["name"] != "c:1"; (m["health"] == 1.0) != want {
			t.Errorf("b sees %v health %v", m["name"], m["health"])
		}
	}
}

func TestForceReconfigOnSecondary(t *testing.T) {
	s, ms := newSet(t, "a:1", "b:1", "c:1")
	c := client(t, ms[0])
	if _, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: cfgDoc(1, mem(0, "a:1", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	for v, cfg := range []bson.D{
		cfgDoc(2, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1)),
		cfgDoc(3, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1), mem(2, "c:1", 1, 1)),
	} {
		if _, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: cfg}}); err != nil {
			t.Fatalf("step %d: %v", v, err)
		}
	}
	ms[0].Stop()
	ms[1].Stop()
	if s.Primary() != nil {
		t.Fatal("c alone is primary")
	}
	cc := client(t, ms[2])
	if _, err := run(t, cc, bson.D{{Key: "replSetReconfig", Value: cfgDoc(4, mem(2, "c:1", 1, 1))}}); code(err) != CodeNotWritablePrimary {
		t.Fatalf("non-force on a secondary: %v", err)
	}
	if _, err := run(t, cc, bson.D{{Key: "replSetReconfig", Value: cfgDoc(4, mem(2, "c:1", 1, 1))}, {Key: "force", Value: true}}); err != nil {
		t.Fatal(err)
	}
	if s.Primary() != ms[2] {
		t.Fatal("c not primary after the forced reconfig")
	}
	if v := ms[2].Config().Version; v < 100000 {
		t.Fatalf("forced version %d: mongod raises it by a large amount", v)
	}
}

func TestStepDown(t *testing.T) {
	s, ms := newSet(t, "a:1", "b:1")
	c := client(t, ms[0])
	if _, err := run(t, c, bson.D{{Key: "replSetInitiate", Value: cfgDoc(1, mem(0, "a:1", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, c, bson.D{{Key: "replSetStepDown", Value: 60}}); code(err) != CodeExceededTimeLimit {
		t.Fatalf("step-down without an electable secondary: %v, want 262", err)
	}
	if _, err := run(t, c, bson.D{{Key: "replSetReconfig", Value: cfgDoc(2, mem(0, "a:1", 1, 1), mem(1, "b:1", 1, 1))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, c, bson.D{{Key: "replSetStepDown", Value: 5}}); err == nil {
		t.Fatal("a step-down period shorter than the catch-up period was accepted")
	}
	if _, err := run(t, c, bson.D{{Key: "replSetStepDown", Value: 60}}); err != nil {
		t.Fatal(err)
	}
	if s.Primary() != ms[1] {
		t.Fatalf("primary after step-down = %v, want b", s.Primary())
	}
	// a is frozen for 60 s: b's loss leaves no primary (a alone is not a majority of 2 anyway),
	// and a step-down on a secondary is refused.
	if _, err := run(t, c, bson.D{{Key: "replSetStepDown", Value: 60}}); code(err) != CodeNotWritablePrimary {
		t.Fatalf("step-down on a secondary: %v, want 10107", err)
	}
	// replSet commands only run against admin.
	var out bson.M
	err := c.Database("test").RunCommand(context.Background(), bson.D{{Key: "replSetGetStatus", Value: 1}}).Decode(&out)
	if code(err) != CodeUnauthorized {
		t.Fatalf("replSetGetStatus on db test: %v, want 13", err)
	}
}

// Table tests for the pure parts of the config handling and probing: the document edits, the
// commit check, applying a planned step, and a member's config host and Target.

package mongo

import (
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
)

func TestDocEdits(t *testing.T) {
	d := bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}
	if v, ok := lookup(d, "b"); !ok || v != "x" {
		t.Errorf("lookup(b) = %v, %v", v, ok)
	}
	if _, ok := lookup(d, "c"); ok {
		t.Error("lookup(c) found a missing key")
	}
	for _, tc := range []struct {
		name string
		got  bson.D
		want bson.D
	}{
		{"set replaces in place", set(d, "a", 2), bson.D{{Key: "a", Value: 2}, {Key: "b", Value: "x"}}},
		{"set appends", set(d, "c", true), bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}, {Key: "c", Value: true}}},
		{"unset removes", unset(d, "a"), bson.D{{Key: "b", Value: "x"}}},
		{"unset missing", unset(d, "z"), d},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if !reflect.DeepEqual(d, bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}) {
		t.Errorf("set/unset changed their input: %v", d)
	}
}

func TestWithMembers(t *testing.T) {
	rc := &rawConfig{version: 4, term: 2, doc: bson.D{
		{Key: "_id", Value: "rs0"},
		{Key: "version", Value: int32(4)},
		{Key: "term", Value: int64(2)},
		{Key: "members", Value: bson.A{
			bson.D{{Key: "_id", Value: int32(0)}, {Key: "host", Value: "a:27017"}, {Key: "tags", Value: bson.D{{Key: "dc", Value: "x"}}}},
			bson.D{{Key: "_id", Value: int32(1)}, {Key: "host", Value: "b:27017"}, {Key: "newlyAdded", Value: true}},
		}},
		{Key: "settings", Value: bson.D{{Key: "chainingAllowed", Value: true}}},
	}}
	got := rc.withMembers([]ConfigMember{
		{ID: 0, Host: "a:27017", Votes: 1, Priority: 2},
		{ID: 1, Host: "b:27017", Votes: 0, Priority: 0},
		{ID: 5, Host: "c:27017", Votes: 1, Priority: 1},
	})
	want := bson.D{
		{Key: "_id", Value: "rs0"},
		{Key: "version", Value: int32(5)},
		{Key: "members", Value: bson.A{
			bson.D{{Key: "_id", Value: int32(0)}, {Key: "host", Value: "a:27017"}, {Key: "tags", Value: bson.D{{Key: "dc", Value: "x"}}}, {Key: "priority", Value: 2.0}, {Key: "votes", Value: int32(1)}},
			bson.D{{Key: "_id", Value: int32(1)}, {Key: "host", Value: "b:27017"}, {Key: "priority", Value: 0.0}, {Key: "votes", Value: int32(0)}},
			bson.D{{Key: "_id", Value: int32(5)}, {Key: "host", Value: "c:27017"}, {Key: "priority", Value: 1.0}, {Key: "votes", Value: int32(1)}},
		}},
		{Key: "settings", Value: bson.D{{Key: "chainingAllowed", Value: true}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withMembers:\n got %v\nwant %v", got, want)
	}
}

func TestCommitted(t *testing.T) {
	cfg := &rawConfig{version: 3, term: 1, members: []ConfigMember{
		cm(0, "a", 1, 1), cm(1, "b", 1, 1), cm(2, "c", 1, 1), cm(3, "d", 0, 0),
	}}
	held := func(name string) statusMember {
		return statusMember{Name: name, Health: 1, ConfigVersion: 3, ConfigTerm: 1}
	}
	old := func(name string) statusMember {
		return statusMember{Name: name, Health: 1, ConfigVersion: 2, ConfigTerm: 1}
	}
	down := func(name string) statusMember {
		return statusMember{Name: name, Health: 0, ConfigVersion: 3, ConfigTerm: 1}
	}
	for _, tc := range []struct {
		name       string
		members    []statusMember
		ok         bool
		have, need int
	}{
		{"all hold it", []statusMember{held("a"), held("b"), held("c"), held("d")}, true, 3, 2},
		{"a majority", []statusMember{held("a"), held("b"), old("c")}, true, 2, 2},
		{"one of three", []statusMember{held("a"), old("b"), old("c")}, false, 1, 2},
		{"unhealthy does not count", []statusMember{held("a"), down("b"), old("c")}, false, 1, 2},
		{"non-voter does not count", []statusMember{held("a"), held("d"), old("b")}, false, 1, 2},
		{"other term", []statusMember{held("a"), {Name: "b", Health: 1, ConfigVersion: 3, ConfigTerm: 2}}, false, 1, 2},
	} {
		ok, have, need := committed(cfg, &statusReply{Members: tc.members})
		if ok != tc.ok || have != tc.have || need != tc.need {
			t.Errorf("%s: committed = %v, %d, %d; want %v, %d, %d", tc.name, ok, have, need, tc.ok, tc.have, tc.need)
		}
	}
}

func TestApplyStep(t *testing.T) {
	cur := []ConfigMember{cm(0, "a", 1, 1), cm(1, "b", 1, 1)}
	for _, tc := range []struct {
		name string
		st   Step
		want []ConfigMember
	}{
		{"none", Step{Kind: StepNone}, cur},
		{"add", Step{Kind: StepAdd, Host: "c", ID: 2, Votes: 0, Priority: 0}, []ConfigMember{cm(0, "a", 1, 1), cm(1, "b", 1, 1), cm(2, "c", 0, 0)}},
		{"remove", Step{Kind: StepRemove, Host: "a"}, []ConfigMember{cm(1, "b", 1, 1)}},
		{"change", Step{Kind: StepChange, Host: "b", Votes: 0, Priority: 0}, []ConfigMember{cm(0, "a", 1, 1), cm(1, "b", 0, 0)}},
		{"remove missing", Step{Kind: StepRemove, Host: "z"}, cur},
	} {
		if got := applyStep(cur, tc.st); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: applyStep = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := countVoters([]ConfigMember{cm(0, "a", 1, 1), cm(1, "b", 0, 0), cm(2, "c", 1, 0)}); got != 2 {
		t.Errorf("countVoters = %d, want 2", got)
	}
}

func TestTargetsOf(t *testing.T) {
	d := replicaset.Desired{Members: []replicaset.Member{
		{Name: "db-0", Index: 0, Host: "db-0.db", Port: 27017, Ready: true},
		{Name: "db-1", Index: 1, Host: "db-1.db", Port: 27017},
		{Name: "arb-0", Index: 0, Host: "arb-0.arb", Port: 27018, Ready: true},
	}}
	spec := &v1.MongoReplicaSet{Priorities: map[string]float64{"arb": 0}}
	want := []Target{
		{Name: "db-0", Host: "db-0.db:27017", Priority: 1, Ready: true},
		{Name: "db-1", Host: "db-1.db:27017", Priority: 1},
		{Name: "arb-0", Host: "arb-0.arb:27018", Priority: 0, Ready: true},
	}
	if got := targetsOf(d, spec); !reflect.DeepEqual(got, want) {
		t.Errorf("targetsOf = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		m    replicaset.Member
		want string
	}{
		{replicaset.Member{Name: "db-12", Index: 12}, "db"},
		{replicaset.Member{Name: "my-db-3", Index: 3}, "my-db"},
		{replicaset.Member{Name: "db-1", Index: 2}, "db-1"},
	} {
		if got := serviceOf(tc.m); got != tc.want {
			t.Errorf("serviceOf(%s, %d) = %q, want %q", tc.m.Name, tc.m.Index, got, tc.want)
		}
	}
}

func TestNameOf(t *testing.T) {
	s := &step{names: map[string]string{"db-0.db:27017": "db-0"}}
	for _, tc := range []struct{ host, want string }{
		{"db-0.db:27017", "db-0"},
		{"db-3.db:27017", "db-3"},
		{"db-4", "db-4"},
		{"", ""},
	} {
		if got := s.nameOf(tc.host); got != tc.want {
			t.Errorf("nameOf(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
	if got := s.namesOf([]string{"db-0.db:27017", "db-9.db:27017"}); !reflect.DeepEqual(got, []string{"db-0", "db-9"}) {
		t.Errorf("namesOf = %v", got)
	}
}

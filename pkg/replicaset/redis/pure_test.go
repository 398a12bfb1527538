// Table tests for the pure parts beside the planner: settings from the spec and their
// fingerprint, the status conditions, and reply parsing.

package redis

import (
	"reflect"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
)

func TestSettingsOf(t *testing.T) {
	rs := func(r *v1.RedisReplicaSet) *v1.ReplicaSet {
		x := &v1.ReplicaSet{Spec: v1.ReplicaSetSpec{Redis: r}}
		x.Metadata.Name = "cache"
		return x
	}
	three := []replicaset.Member{{Name: "s-0"}, {Name: "s-1"}, {Name: "s-2"}}
	for _, tc := range []struct {
		name    string
		d       replicaset.Desired
		want    settings
		wantErr bool
	}{
		{"no spec", replicaset.Desired{}, settings{}, true},
		{"no redis", replicaset.Desired{ReplicaSet: rs(nil)}, settings{}, true},
		{"defaults", replicaset.Desired{ReplicaSet: rs(&v1.RedisReplicaSet{}), Sentinels: three},
			settings{masterName: "cache", quorum: 2, downAfter: v1.DefaultRedisDownAfter, failoverTimeout: v1.DefaultRedisFailover, minLag: v1.DefaultRedisMinLag}, false},
		{"set", replicaset.Desired{
			ReplicaSet: rs(&v1.RedisReplicaSet{MasterName: "m", Quorum: 1, MinReplicasToWrite: 1,
				DownAfter: &v1.Duration{Duration: time.Second}, FailoverTimeout: &v1.Duration{Duration: 3 * time.Second},
				MinReplicasMaxLag: &v1.Duration{Duration: 4 * time.Second}}),
			Sentinels: three, Secrets: map[string]string{SecretPassword: "pw"}},
			settings{masterName: "m", quorum: 1, downAfter: time.Second, failoverTimeout: 3 * time.Second, minReplicas: 1, minLag: 4 * time.Second, password: "pw"}, false},
		{"quorum of no sentinels", replicaset.Desired{ReplicaSet: rs(&v1.RedisReplicaSet{MasterName: "m"})},
			settings{masterName: "m", quorum: 1, downAfter: v1.DefaultRedisDownAfter, failoverTimeout: v1.DefaultRedisFailover, minLag: v1.DefaultRedisMinLag}, false},
	} {
		got, err := settingsOf(tc.d)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: settingsOf = %+v, %v; want %+v, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := settings{masterName: "m", quorum: 2, downAfter: time.Second, failoverTimeout: time.Second, minReplicas: 1, minLag: time.Second, password: "a"}
	if base.fingerprint() != base.fingerprint() {
		t.Fatal("fingerprint is not stable")
	}
	for _, change := range []func(*settings){
		func(s *settings) { s.masterName = "n" },
		func(s *settings) { s.quorum = 3 },
		func(s *settings) { s.downAfter = 2 * time.Second },
		func(s *settings) { s.failoverTimeout = 2 * time.Second },
		func(s *settings) { s.minReplicas = 0 },
		func(s *settings) { s.minLag = 0 },
		func(s *settings) { s.password = "b" },
	} {
		s := base
		change(&s)
		if s.fingerprint() == base.fingerprint() {
			t.Errorf("fingerprint does not see %+v vs %+v", s, base)
		}
	}
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"", 14695981039346656037}, // FNV-1a offset basis
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
	} {
		if got := hashString(tc.in); got != tc.want {
			t.Errorf("hashString(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestConditions(t *testing.T) {
	now := time.Unix(100, 0)
	healthy := v1.MemberStatus{Health: HealthHealthy}
	syncing := v1.MemberStatus{Health: HealthSyncing}
	for _, tc := range []struct {
		name          string
		p             planOutput
		ms            []v1.MemberStatus
		ready, agreed v1.ConditionStatus
		readyReason   v1.ConditionReason
		readyMessage  string
	}{
		{"all healthy", planOutput{Agreed: true, Mode: modeAgreed, Message: "m"}, []v1.MemberStatus{healthy, healthy},
			v1.ConditionTrue, v1.ConditionTrue, "AllMembersHealthy", "2 of 2 members healthy"},
		{"one syncing", planOutput{Agreed: true, Mode: modeAgreed}, []v1.MemberStatus{healthy, syncing},
			v1.ConditionFalse, v1.ConditionTrue, "MembersNotHealthy", "1 of 2 members healthy"},
		{"not agreed", planOutput{Mode: modeNoQuorum, Message: "2 of 3 sentinels down"}, []v1.MemberStatus{healthy},
			v1.ConditionFalse, v1.ConditionFalse, "NoSentinelQuorum", "2 of 3 sentinels down"},
	} {
		cs := conditions(tc.p, tc.ms, now)
		if len(cs) != 2 || cs[0].Type != v1.ReplicaSetReady || cs[1].Type != v1.ReplicaSetPrimaryAgreed {
			t.Fatalf("%s: conditions %+v", tc.name, cs)
		}
		r, a := cs[0], cs[1]
		if r.Status != tc.ready || r.Reason != tc.readyReason || r.Message != tc.readyMessage || !r.LastTransitionTime.Equal(now) {
			t.Errorf("%s: Ready = %+v", tc.name, r)
		}
		if a.Status != tc.agreed || a.Reason != v1.ConditionReason(tc.p.Mode) || a.Message != tc.p.Message || !a.LastTransitionTime.Equal(now) {
			t.Errorf("%s: PrimaryAgreed = %+v", tc.name, a)
		}
	}
}

func TestReplies(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want int64
	}{
		{int64(5), 5}, {"42", 42}, {"x", 0}, {3.0, 0}, {nil, 0},
	} {
		if got := toInt64(tc.in); got != tc.want {
			t.Errorf("toInt64(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
	info := "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nmaster_repl_offset:99\r\n"
	for _, tc := range []struct{ key, want string }{
		{"role", "master"}, {"connected_slaves", "2"}, {"master_repl_offset", "99"}, {"missing", ""}, {"# Replication", ""},
	} {
		if got := infoField(info, tc.key); got != tc.want {
			t.Errorf("infoField(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   any
		want map[string]string
	}{
		{[]any{"name", "m", "port", int64(6379)}, map[string]string{"name": "m", "port": "6379"}},
		{[]any{"odd"}, map[string]string{}},
		{map[any]any{"flags": "master", "num-slaves": int64(2)}, map[string]string{"flags": "master", "num-slaves": "2"}},
		{"nope", nil},
	} {
		if got := kv(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("kv(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	got := list([]any{[]any{"ip", "a"}, "skip", []any{"ip", "b"}})
	if want := []map[string]string{{"ip": "a"}, {"ip": "b"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("list = %v, want %v", got, want)
	}
	if list("nope") != nil {
		t.Error("list of a non-array is not nil")
	}
	for _, tc := range []struct {
		in   string
		want int
	}{{"7", 7}, {"", 0}, {"x", 0}} {
		if got := atoi(tc.in); got != tc.want {
			t.Errorf("atoi(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1:6379", "10.0.0.1"}, {"[::1]:6379", "::1"}, {"nohost", ""},
	} {
		if got := dialHost(tc.in); got != tc.want {
			t.Errorf("dialHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

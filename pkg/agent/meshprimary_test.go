package agent

import (
	"net/netip"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestPrimaryTargets(t *testing.T) {
	three := int32(3)
	svc := &v1.Service{Metadata: v1.ObjectMeta{Name: "redis"}, Spec: v1.ServiceSpec{Replicas: &three},
		Status: v1.ServiceStatus{VirtualIP: "10.213.0.5", ReplicaVirtualIPs: []v1.ReplicaVirtualIP{
			{Index: 0, IP: "10.213.0.6"}, {Index: 1, IP: "10.213.0.7"}, {Index: 2, IP: "10.213.0.8"}}}}
	rs := func(name, primary string, agreed v1.ConditionStatus) *v1.ReplicaSet {
		r := &v1.ReplicaSet{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"redis"}},
			Status: v1.ReplicaSetStatus{Primary: primary}}
		if agreed != "" {
			r.Status.Conditions = []v1.Condition{{Type: v1.ReplicaSetPrimaryAgreed, Status: agreed}}
		}
		return r
	}
	tests := []struct {
		name string
		rs   *v1.ReplicaSet
		want string // "" = no address
	}{
		{"agreed primary: its replica's virtual IP", rs("cache", "redis-1", v1.ConditionTrue), "10.213.0.7"},
		{"not agreed: no address", rs("cache", "redis-1", v1.ConditionFalse), ""},
		{"no condition yet: no address", rs("cache", "redis-1", ""), ""},
		{"primary of a Service that is no member", rs("cache", "other-0", v1.ConditionTrue), ""},
		{"index scaled away", rs("cache", "redis-7", v1.ConditionTrue), ""},
		{"unparsable primary", rs("cache", "redis", v1.ConditionTrue), ""},
		{"the replica set's own virtual IP once allocated (its listener checks agreement)", func() *v1.ReplicaSet {
			r := rs("cache", "redis-1", v1.ConditionFalse)
			r.Status.VirtualIP = "10.213.0.40"
			return r
		}(), "10.213.0.40"},
	}
	for _, tt := range tests {
		got := primaryTargets([]*v1.ReplicaSet{tt.rs}, []*v1.Service{svc})
		if len(got) != 1 || got[0].Name != "cache" {
			t.Fatalf("%s: %+v", tt.name, got)
		}
		want := netip.Addr{}
		if tt.want != "" {
			want = netip.MustParseAddr(tt.want)
		}
		if got[0].Primary != want {
			t.Errorf("%s: primary %v, want %v", tt.name, got[0].Primary, want)
		}
	}
	// The name server answers it (pkg/mesh/dns is table-tested for <rs>-primary).
	tab := nameTable([]*v1.Service{svc}, primaryTargets([]*v1.ReplicaSet{rs("cache", "redis-2", v1.ConditionTrue)}, []*v1.Service{svc}))
	if tab == nil {
		t.Fatal("no table")
	}
}

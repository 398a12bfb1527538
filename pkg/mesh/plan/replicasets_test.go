package plan

import (
	"net/netip"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func TestComputeReplicaSetPrimary(t *testing.T) {
	prefix := netip.MustParsePrefix("10.213.0.0/16")
	db := svc("db", "10.213.0.10", 3, "10.213.0.11", "10.213.0.12", "10.213.0.13")
	db.Spec.Ports = []v1.ServicePort{{Name: "redis", ContainerPort: 6379}}
	reps := []observed.Replica{
		replica("db", 0, "n1", true, map[string]string{"6379/tcp": "192.0.2.1:30001"}),
		replica("db", 1, "n2", true, map[string]string{"6379/tcp": "192.0.2.2:30002"}),
		replica("db", 2, "n3", true, map[string]string{"6379/tcp": "192.0.2.3:30003"}),
	}
	rs := func(primary string, agreed v1.ConditionStatus, vip string) *v1.ReplicaSet {
		r := &v1.ReplicaSet{Metadata: v1.ObjectMeta{Name: "cache"}, Spec: v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"db"}},
			Status: v1.ReplicaSetStatus{Primary: primary, VirtualIP: vip,
				Conditions: []v1.Condition{{Type: v1.ReplicaSetPrimaryAgreed, Status: agreed}}}}
		return r
	}
	tests := []struct {
		name string
		rs   *v1.ReplicaSet
		want string // the <rs>-primary lines of show()
	}{
		{"agreed: the primary replica alone", rs("db-1", v1.ConditionTrue, "10.213.0.50"),
			"10.213.0.50:6379/tcp cache-primary n2=192.0.2.2:30002+L\n"},
		{"not agreed: a listener with no endpoint", rs("db-1", v1.ConditionFalse, "10.213.0.50"),
			"10.213.0.50:6379/tcp cache-primary\n"},
		{"primary of no member Service", rs("web-0", v1.ConditionTrue, "10.213.0.50"),
			"10.213.0.50:6379/tcp cache-primary\n"},
		{"no virtual IP yet: nothing", rs("db-1", v1.ConditionTrue, ""), ""},
		{"virtual IP outside the prefix: nothing", rs("db-1", v1.ConditionTrue, "10.9.0.1"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Compute(Input{Node: "n2", Services: []*v1.Service{db}, Replicas: reps, Prefix: prefix, ReplicaSets: []*v1.ReplicaSet{tt.rs}})
			var lines string
			for _, line := range splitLines(show(out.Table)) {
				if len(line) > 0 && contains(line, "cache-primary") {
					lines += line + "\n"
				}
			}
			if lines != tt.want {
				t.Errorf("got\n%s\nwant\n%s", lines, tt.want)
			}
			hasVIP := false
			for _, a := range out.Addresses {
				hasVIP = hasVIP || a.String() == tt.rs.Status.VirtualIP
			}
			if hasVIP != (tt.want != "") {
				t.Errorf("address %s on lo: %v, want %v", tt.rs.Status.VirtualIP, hasVIP, tt.want != "")
			}
		})
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

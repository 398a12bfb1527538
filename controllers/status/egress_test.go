package status

import (
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func TestFoldEgressHealthyAndGatewayUnhealthy(t *testing.T) {
	gw := service("web", 2)
	gw.Spec.EgressCheck = &v1.EgressCheck{URL: "http://x/"}
	ok := rep(0, "a", "h", v1.ReplicaRunning, v1.HealthHealthy)
	bad := rep(1, "b", "h", v1.ReplicaRunning, v1.HealthUnhealthy)
	bad.Reason, bad.Message = v1.ReasonEgressUnhealthy, "warp=off (expected warp=(on|plus))"
	gone := bad
	gone.Reason = v1.ReasonEgressFailed
	starting := rep(1, "b", "h", v1.ReplicaRunning, v1.HealthStarting)
	cases := []struct {
		name, want, msg string
		rs              []observed.Replica
	}{
		{"both pass", "True/EgressCheckPassed", "2/2", []observed.Replica{ok, rep(1, "b", "h", v1.ReplicaRunning, v1.HealthHealthy)}},
		{"one says warp=off", "False/EgressCheckFailed", "web-1 on b: warp=off", []observed.Replica{ok, bad}},
		{"healing gave up", "False/EgressFailed", "warp=off", []observed.Replica{ok, gone}},
		{"not probed yet", "Unknown/EgressPending", "0 running", nil},
		{"one passing one starting", "True/EgressCheckPassed", "1/2", []observed.Replica{ok, starting}},
	}
	for _, c := range cases {
		st := FoldService(gw, c.rs, "h", t0)
		if got := cond(st, v1.ServiceEgressHealthy); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		if m := v1.FindCondition(st.Conditions, v1.ServiceEgressHealthy).Message; !strings.Contains(m, c.msg) {
			t.Errorf("%s: message %q, want %q", c.name, m, c.msg)
		}
	}
	if st := FoldService(service("web", 1), []observed.Replica{ok}, "h", t0); v1.FindCondition(st.Conditions, v1.ServiceEgressHealthy) != nil {
		t.Error("EgressHealthy on a Service without an egressCheck")
	}

	dep := service("web", 1)
	gated := observed.Replica{Service: "web", Index: 0, Node: "a", State: v1.ReplicaPending, Health: v1.HealthNone,
		Reason: v1.ReasonGatewayUnhealthy, Message: "egress check of warp (container abc) not passing: warp=off"}
	st := FoldService(dep, []observed.Replica{gated}, "h", t0)
	if got := cond(st, v1.ServiceReady); got != "False/GatewayUnhealthy" {
		t.Errorf("dependent Ready %s", got)
	}
	if m := v1.FindCondition(st.Conditions, v1.ServiceReady).Message; !strings.Contains(m, "warp=off") {
		t.Errorf("dependent Ready message %q", m)
	}
}

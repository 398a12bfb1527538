package status

import (
	"fmt"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// egressCondition is EgressHealthy of a Service with an egressCheck, from what the nodes report
// of its replicas (the node reconciler publishes a gateway replica whose check fails with reason
// EgressUnhealthy or EgressFailed and the last probe result as message; docs/egress.md).
func egressCondition(rs []observed.Replica) v1.Condition {
	c := v1.Condition{Type: v1.ServiceEgressHealthy}
	var bad []string
	running, passing, failed := 0, 0, 0
	for _, r := range rs {
		if r.State != v1.ReplicaRunning {
			continue
		}
		running++
		switch r.Reason {
		case v1.ReasonEgressFailed:
			failed++
			bad = append(bad, fmt.Sprintf("%s-%d on %s: %s", r.Service, r.Index, r.Node, r.Message))
		case v1.ReasonEgressUnhealthy:
			bad = append(bad, fmt.Sprintf("%s-%d on %s: %s", r.Service, r.Index, r.Node, r.Message))
		default:
			if r.Ready() {
				passing++
			}
		}
	}
	switch {
	case len(bad) > 0:
		c.Status, c.Reason, c.Message = v1.ConditionFalse, v1.ReasonEgressCheckFailed, strings.Join(bad, "; ")
		if failed > 0 {
			c.Reason = v1.ReasonEgressFailed
		}
	case passing == 0:
		c.Status, c.Reason, c.Message = v1.ConditionUnknown, v1.ReasonEgressPending, fmt.Sprintf("no replica's egress check has passed yet (%d running)", running)
	default:
		c.Status, c.Reason, c.Message = v1.ConditionTrue, v1.ReasonEgressCheckPassed, fmt.Sprintf("egress check passes on %d/%d running replicas", passing, running)
	}
	return c
}

// gatewayUnhealthy returns the message of the first replica held back because its gateway is
// unhealthy (reason GatewayUnhealthy), or "".
func gatewayUnhealthy(rs []observed.Replica) string {
	for _, r := range rs {
		if r.Reason == v1.ReasonGatewayUnhealthy {
			return r.Message
		}
	}
	return ""
}

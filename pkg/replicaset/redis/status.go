// Status from one step's views: each member's role and health, and the Ready and PrimaryAgreed
// conditions. Pure.

package redis

import (
	"fmt"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func memberStatuses(ms []memberView, p planOutput) []v1.MemberStatus {
	out := make([]v1.MemberStatus, len(ms))
	for i := range ms {
		m := &ms[i]
		st := v1.MemberStatus{Name: m.Name, Role: RoleUnknown, Offset: m.Offset}
		switch {
		case !m.Ready:
			st.Health = HealthNotReady
		case !m.Reachable:
			st.Health = HealthUnreachable
		case m.Role == "master":
			st.Role, st.Health = RoleMaster, HealthHealthy
			if p.Agreed && p.Primary != i {
				st.Health = HealthDiverged
			}
		case m.Role == "slave":
			st.Role, st.Health = RoleReplica, HealthHealthy
			switch {
			case p.Agreed && memberAt(ms, m.MasterHost, m.MasterPort) != p.Primary:
				st.Health = HealthDiverged
			case !m.LinkUp:
				st.Health = HealthSyncing
			}
		default:
			st.Health = HealthHealthy
		}
		out[i] = st
	}
	return out
}

func conditions(p planOutput, ms []v1.MemberStatus, now time.Time) []v1.Condition {
	agreed := v1.Condition{Type: v1.ReplicaSetPrimaryAgreed, Status: v1.ConditionFalse, Reason: v1.ConditionReason(p.Mode), Message: p.Message, LastTransitionTime: now}
	if p.Agreed {
		agreed.Status = v1.ConditionTrue
	}
	ready := v1.Condition{Type: v1.ReplicaSetReady, Status: v1.ConditionFalse, LastTransitionTime: now}
	healthy := 0
	for _, m := range ms {
		if m.Health == HealthHealthy {
			healthy++
		}
	}
	switch {
	case !p.Agreed:
		ready.Reason, ready.Message = v1.ConditionReason(p.Mode), p.Message
	case healthy < len(ms):
		ready.Reason, ready.Message = "MembersNotHealthy", fmt.Sprintf("%d of %d members healthy", healthy, len(ms))
	default:
		ready.Status, ready.Reason, ready.Message = v1.ConditionTrue, "AllMembersHealthy", fmt.Sprintf("%d of %d members healthy", healthy, len(ms))
	}
	return []v1.Condition{ready, agreed}
}

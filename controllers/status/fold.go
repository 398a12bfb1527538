package status

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// Gossip states reported in NodeStatus.GossipState besides the failure detector's own.
const GossipUnknown = "unknown"

// FoldService returns svc's status with the fields the status controller owns recomputed from
// replicas (the observed replicas of svc on live nodes) and hash (the spec hash replicas must
// run to count as updated). Every other field of svc.Status is returned as it was. svc is not
// modified.
func FoldService(svc *v1.Service, replicas []observed.Replica, hash string, now time.Time) v1.ServiceStatus {
	out := svc.DeepCopyObject().(*v1.Service).Status
	out.ObservedGeneration = svc.Metadata.Generation

	rs := make([]observed.Replica, 0, len(replicas))
	for _, r := range replicas {
		if r.Service == svc.Metadata.Name {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Index != rs[j].Index {
			return rs[i].Index < rs[j].Index
		}
		if rs[i].Node != rs[j].Node {
			return rs[i].Node < rs[j].Node
		}
		return rs[i].SpecHash < rs[j].SpecHash
	})

	out.Replicas, out.ReadyReplicas, out.UpdatedReplicas = int32(len(rs)), 0, 0
	out.ReplicaStatuses = nil
	var starting int
	var problems []problem
	for _, r := range rs {
		if r.Ready() {
			out.ReadyReplicas++
		}
		if hash != "" && r.SpecHash == hash {
			out.UpdatedReplicas++
		}
		if isStarting(r) {
			starting++
		}
		if reason := problemReason(r); reason != "" {
			problems = append(problems, problem{r, reason})
		}
		msg := r.Message
		if msg == "" && r.Reason != "" {
			msg = string(r.Reason)
		}
		out.ReplicaStatuses = append(out.ReplicaStatuses, v1.ReplicaStatus{
			Index: r.Index, Node: r.Node, ContainerID: r.ContainerID, State: r.State, Health: r.Health,
			Address: address(r, svc.Spec.Ports), SpecHash: r.SpecHash, Message: msg,
		})
	}

	// Replicas waiting for their lost node (sticky volumes, the scheduler's assignment says
	// since when): no container runs for them anywhere, so no node reports them; show them
	// with their node and since when, and let Degraded say so.
	var waiting []string
	for _, a := range svc.Status.Assignments {
		if a.WaitingSince == nil || slices.ContainsFunc(rs, func(r observed.Replica) bool { return r.Index == a.Index }) {
			continue
		}
		since := a.WaitingSince.UTC().Format(time.RFC3339)
		out.ReplicaStatuses = append(out.ReplicaStatuses, v1.ReplicaStatus{
			Index: a.Index, Node: a.Node, State: v1.ReplicaWaitingForNode, SpecHash: a.SpecHash,
			Message: fmt.Sprintf("waiting for node %s (lost since %s): the replica's named volume is there", a.Node, since),
		})
		waiting = append(waiting, fmt.Sprintf("%s-%d on %s since %s", svc.Metadata.Name, a.Index, a.Node, since))
	}
	if len(waiting) > 0 {
		sort.SliceStable(out.ReplicaStatuses, func(i, j int) bool { return out.ReplicaStatuses[i].Index < out.ReplicaStatuses[j].Index })
	}

	desired := svc.DesiredReplicas()
	ready := v1.Condition{Type: v1.ServiceReady}
	switch {
	case svc.Spec.IsUpstreamService():
		ready.Status, ready.Reason = v1.ConditionTrue, v1.ReasonUpstreams
		ready.Message = fmt.Sprintf("%d upstream(s) proxied by every node's mesh", len(svc.Spec.Upstreams))
	case desired == 0:
		ready.Status, ready.Reason, ready.Message = v1.ConditionTrue, v1.ReasonScaledToZero, "scaled to zero"
	case out.ReadyReplicas >= desired:
		ready.Status, ready.Reason = v1.ConditionTrue, v1.ReasonAllReplicasReady
		ready.Message = fmt.Sprintf("%d/%d replicas ready", out.ReadyReplicas, desired)
	default:
		ready.Status, ready.Reason = v1.ConditionFalse, v1.ReasonReplicasNotReady
		ready.Message = fmt.Sprintf("%d/%d replicas ready", out.ReadyReplicas, desired)
		if why := gatewayUnhealthy(rs); why != "" {
			ready.Reason, ready.Message = v1.ReasonGatewayUnhealthy, ready.Message+": "+why
		}
	}
	if svc.Spec.EgressCheck != nil {
		setCondition(&out.Conditions, egressCondition(rs), now)
	}

	degraded := v1.Condition{Type: v1.ServiceDegraded}
	switch {
	case len(problems) > 0:
		degraded.Status = v1.ConditionTrue
		degraded.Reason, degraded.Message = summarise(svc.Metadata.Name, problems)
	case len(waiting) > 0 && out.ReadyReplicas < desired:
		degraded.Status, degraded.Reason = v1.ConditionTrue, v1.ReasonWaitingForNode
		degraded.Message = fmt.Sprintf("%d/%d replicas ready; waiting for their node (named volume): %s", out.ReadyReplicas, desired, strings.Join(waiting, ", "))
	case desired > 0 && out.ReadyReplicas < desired && starting == 0:
		// Replicas are missing and none is on its way (a node died, nothing was placed yet).
		degraded.Status, degraded.Reason = v1.ConditionTrue, v1.ReasonReplicasNotReady
		degraded.Message = fmt.Sprintf("%d/%d replicas ready, none starting", out.ReadyReplicas, desired)
	case out.ReadyReplicas < desired:
		degraded.Status, degraded.Reason = v1.ConditionFalse, v1.ReasonReplicasNotReady
		degraded.Message = fmt.Sprintf("%d replica(s) starting", starting)
	default:
		degraded.Status, degraded.Reason = v1.ConditionFalse, v1.ReasonAllReplicasReady
	}
	setCondition(&out.Conditions, ready, now)
	setCondition(&out.Conditions, degraded, now)
	return out
}

type problem struct {
	r      observed.Replica
	reason v1.ConditionReason
}

// problemReason says what is wrong with a replica, or "".
func problemReason(r observed.Replica) v1.ConditionReason {
	switch {
	case r.Reason != "":
		return r.Reason
	case r.Health == v1.HealthUnhealthy:
		return v1.ReasonUnhealthy
	case (r.State == v1.ReplicaFailed || r.State == v1.ReplicaExited) && r.Restarts > 0:
		return v1.ReasonCrashLoop
	}
	return ""
}

func isStarting(r observed.Replica) bool {
	if r.Ready() || problemReason(r) != "" {
		return false
	}
	return r.State == v1.ReplicaPending || r.State == v1.ReplicaCreated ||
		(r.State == v1.ReplicaRunning && r.Health == v1.HealthStarting)
}

// summarise picks the most frequent reason (ties: alphabetical) and names the first replicas
// that have it.
func summarise(svc string, ps []problem) (v1.ConditionReason, string) {
	count := map[v1.ConditionReason]int{}
	for _, p := range ps {
		count[p.reason]++
	}
	var best v1.ConditionReason
	for reason, n := range count {
		if best == "" || n > count[best] || (n == count[best] && reason < best) {
			best = reason
		}
	}
	var parts []string
	for _, p := range ps {
		if p.reason != best {
			continue
		}
		if len(parts) == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", count[best]-3))
			break
		}
		s := fmt.Sprintf("%s-%d on %s", svc, p.r.Index, p.r.Node)
		if p.r.Message != "" {
			s += ": " + p.r.Message
		}
		parts = append(parts, s)
	}
	return best, strings.Join(parts, "; ")
}

// address returns host:port of the replica's first declared port, else of its first published
// port in key order.
func address(r observed.Replica, ports []v1.ServicePort) string {
	if len(r.Ports) == 0 {
		return ""
	}
	if len(ports) > 0 {
		if a, ok := r.Ports[observed.PortKey(ports[0].ContainerPort, ports[0].Protocol)]; ok {
			return a
		}
	}
	keys := make([]string, 0, len(r.Ports))
	for k := range r.Ports {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return r.Ports[keys[0]]
}

// FoldNode returns node's status with the fields the status controller owns recomputed from
// obs (nil when gossip does not know the node) and role (nil: left as it is). lastSeen is
// refreshed to now for an alive node only when the stored one is older than refresh, so that
// an idle cluster writes each Node once per refresh, not on every pass. node is not modified.
func FoldNode(node *v1.Node, obs *observed.Node, role *v1.RaftRole, now time.Time, refresh time.Duration) v1.NodeStatus {
	out := node.DeepCopyObject().(*v1.Node).Status
	out.ObservedGeneration = node.Metadata.Generation
	if role != nil {
		out.RaftRole = *role
	}
	ready := v1.Condition{Type: v1.NodeReady}
	if obs == nil {
		out.GossipState = GossipUnknown
		// "I cannot see it" is not "it is gone": a verdict recorded on positive evidence (dead,
		// left, restarting since) stays, so that pkg/nodehealth still reads it when gossip has
		// forgotten the node; only a Ready node becomes Unknown.
		if c := v1.FindCondition(out.Conditions, v1.NodeReady); c != nil && (c.Status == v1.ConditionFalse || c.Reason == v1.ReasonNodeRestarting) {
			return out
		}
		ready.Status, ready.Reason, ready.Message = v1.ConditionUnknown, v1.ReasonNodeUnknown, "not a member of the gossip cluster seen by the status controller"
		setCondition(&out.Conditions, ready, now)
		return out
	}
	out.Addresses = v1.NodeAddresses{Advertise: obs.Advertise, API: obs.API, Raft: obs.Raft, Gossip: obs.Gossip}
	out.AgentVersion = obs.Version
	out.GossipState = obs.State
	switch {
	case obs.Alive:
		ready.Status, ready.Reason, ready.Message = v1.ConditionTrue, v1.ReasonNodeAlive, "alive in gossip"
		if out.LastSeen == nil || now.Sub(*out.LastSeen) >= refresh || out.LastSeen.After(now) {
			t := now.UTC()
			out.LastSeen = &t
		}
	case obs.State == observed.StateRestarting:
		ready.Status, ready.Reason, ready.Message = v1.ConditionUnknown, v1.ReasonNodeRestarting, "agent stopped gracefully to restart; its containers keep running"
		out.LastSeen = lastSeenAt(out.LastSeen, obs.LastChange)
	case obs.State == observed.StateLeft:
		ready.Status, ready.Reason, ready.Message = v1.ConditionFalse, v1.ReasonNodeLeft, "left the cluster"
		out.LastSeen = lastSeenAt(out.LastSeen, obs.LastChange)
	default:
		ready.Status, ready.Reason, ready.Message = v1.ConditionFalse, v1.ReasonNodeDead, "declared dead by the gossip failure detector"
		out.LastSeen = lastSeenAt(out.LastSeen, obs.LastChange)
	}
	setCondition(&out.Conditions, ready, now)
	return out
}

// lastSeenAt moves lastSeen forward to when gossip saw the node go (the failure detector's
// verdict comes a second or two after the node was last heard from).
func lastSeenAt(cur *time.Time, gone time.Time) *time.Time {
	if gone.IsZero() || (cur != nil && !gone.After(*cur)) {
		return cur
	}
	t := gone.UTC()
	return &t
}

// setCondition sets c, stamping LastTransitionTime with now when the status changes and keeping
// the old time otherwise (v1.SetCondition's rule).
func setCondition(conds *[]v1.Condition, c v1.Condition, now time.Time) {
	c.LastTransitionTime = now.UTC()
	v1.SetCondition(conds, c)
}

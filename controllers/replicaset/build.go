package replicaset

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// Labels and owner kind on the objects the controller owns.
const (
	LabelReplicaSet = "constellation.replicaset"
	ownerKind       = v1.KindReplicaSet
)

// memberPort is the port of a member Service the database listens on: the tcp port named
// "redis", "mongo" or "db", else the first tcp port. 0 when there is none.
func memberPort(svc *v1.Service) int {
	first := 0
	for _, p := range svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != v1.ProtocolTCP {
			continue
		}
		switch p.Name {
		case "redis", "mongo", "mongodb", "db", "sentinel":
			return int(p.ContainerPort)
		}
		if first == 0 {
			first = int(p.ContainerPort)
		}
	}
	return first
}

// replicaHost is the per-replica mesh name (DESIGN.md "Mesh"): "<svc>-<i>.<svc>".
func replicaHost(svc string, i int) string { return fmt.Sprintf("%s-%d.%s", svc, i, svc) }

// ReplicaName is "<svc>-<i>", what status.primary holds.
func ReplicaName(svc string, i int) string { return fmt.Sprintf("%s-%d", svc, i) }

// replicaReady: the container runs and does not fail its health check.
func replicaReady(rs v1.ReplicaStatus) bool {
	return rs.State == v1.ReplicaRunning && rs.Health != v1.HealthUnhealthy && rs.Health != v1.HealthStarting
}

// buildMembers turns the replicas of svc into members: one per desired replica index, with the
// mesh name as Host, the replica's virtual IP and port as Dial, and Ready from the replica's
// observed status. nodes marks cordoned or draining nodes (Draining). port overrides the
// Service's port when non-zero.
func buildMembers(svc *v1.Service, port int, draining map[string]bool, host func(svc string, i int) string) []replicaset.Member {
	if host == nil {
		host = replicaHost
	}
	if port == 0 {
		port = memberPort(svc)
	}
	name := svc.Metadata.Name
	vips := map[int32]string{}
	for _, r := range svc.Status.ReplicaVirtualIPs {
		vips[r.Index] = r.IP
	}
	obs := map[int32]v1.ReplicaStatus{}
	for _, r := range svc.Status.ReplicaStatuses {
		if cur, ok := obs[r.Index]; !ok || (replicaReady(r) && !replicaReady(cur)) {
			obs[r.Index] = r
		}
	}
	n := svc.Spec.DesiredReplicas()
	out := make([]replicaset.Member, 0, n)
	for i := range n {
		m := replicaset.Member{Name: ReplicaName(name, int(i)), Index: int(i), Host: host(name, int(i)), Port: port}
		if ip := vips[i]; ip != "" && port != 0 {
			m.Dial = net.JoinHostPort(ip, strconv.Itoa(port))
		}
		if r, ok := obs[i]; ok {
			m.Node = r.Node
			m.Ready = replicaReady(r) && m.Dial != ""
		}
		m.Draining = m.Node != "" && draining[m.Node]
		out = append(out, m)
	}
	return out
}

// sentinelSpec is the Service the controller owns for a redis ReplicaSet: one sentinel per node.
func sentinelSpec(rs *v1.ReplicaSet, image string, nodes int) v1.ServiceSpec {
	r := rs.Spec.Redis
	cmd := r.SentinelCommand
	if len(cmd) == 0 {
		cmd = v1.DefaultSentinelCommand()
	}
	if r.SentinelImage != "" {
		image = r.SentinelImage
	}
	port := r.EffectiveSentinelPort()
	n := int32(max(nodes, 1))
	return v1.ServiceSpec{
		Image:   image,
		Command: append([]string(nil), cmd...),
		// Connections arrive through the mesh, never from loopback: protected mode would refuse them.
		Args:        []string{"--port", strconv.Itoa(port), "--protected-mode", "no"},
		Replicas:    &n,
		Ports:       []v1.ServicePort{{Name: "sentinel", ContainerPort: int32(port), Protocol: v1.ProtocolTCP}},
		HealthCheck: &v1.HealthCheck{TCP: &v1.TCPHealthCheck{}},
		Placement:   &v1.Placement{MaxPerNode: 1},
	}
}

// ownedBy reports whether o names rs as its owner.
func ownedBy(meta *v1.ObjectMeta, rs *v1.ReplicaSet) bool {
	for _, r := range meta.OwnerReferences {
		if r.Kind == ownerKind && r.Name == rs.Metadata.Name && (r.UID == "" || rs.Metadata.UID == "" || r.UID == rs.Metadata.UID) {
			return true
		}
	}
	return false
}

// sentinelDiffers reports whether the owned sentinel Service must be updated to want.
func sentinelDiffers(have, want v1.ServiceSpec) bool {
	return have.Image != want.Image || !equalStrings(have.Command, want.Command) || !equalStrings(have.Args, want.Args) ||
		have.DesiredReplicas() != want.DesiredReplicas() ||
		len(have.Ports) != 1 || have.Ports[0].ContainerPort != want.Ports[0].ContainerPort ||
		have.Placement == nil || have.Placement.MaxPerNode != 1
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// statusFor folds an observation into the next status. It keeps the last primary when the
// engine reports none (the cold-start rule needs the last recorded master) and keeps each
// condition's lastTransitionTime while its status does not change.
func statusFor(old v1.ReplicaSetStatus, gen int64, obs replicaset.Observation) v1.ReplicaSetStatus {
	next := old
	next.ObservedGeneration = gen
	if obs.Primary != "" {
		next.Primary = obs.Primary
	}
	next.Members = append([]v1.MemberStatus(nil), obs.Members...)
	next.Conditions = append([]v1.Condition(nil), old.Conditions...)
	for _, c := range obs.Conditions {
		v1.SetCondition(&next.Conditions, c)
	}
	sort.SliceStable(next.Conditions, func(i, j int) bool { return next.Conditions[i].Type < next.Conditions[j].Type })
	return next
}

// statusChanged reports whether next differs from old in anything but the members' offsets
// (which move with every write; they are written at most every Config.OffsetInterval).
func statusChanged(old, next v1.ReplicaSetStatus) (changed, offsetsOnly bool) {
	if old.Primary != next.Primary || old.ObservedGeneration != next.ObservedGeneration || old.VirtualIP != next.VirtualIP ||
		len(old.Members) != len(next.Members) || len(old.Conditions) != len(next.Conditions) {
		return true, false
	}
	offsets := false
	for i := range old.Members {
		a, b := old.Members[i], next.Members[i]
		if a.Name != b.Name || a.Role != b.Role || a.Health != b.Health {
			return true, false
		}
		if a.Offset != b.Offset {
			offsets = true
		}
	}
	for i := range old.Conditions {
		a, b := old.Conditions[i], next.Conditions[i]
		if a.Type != b.Type || a.Status != b.Status || a.Reason != b.Reason || a.Message != b.Message {
			return true, false
		}
	}
	return offsets, offsets
}

// SetCondition helper: a condition with the controller's reason, for the paths that never
// reach the engine (invalid spec, missing Service, missing Secret).
func condition(t v1.ConditionType, ok bool, reason v1.ConditionReason, msg string) v1.Condition {
	c := v1.Condition{Type: t, Status: v1.ConditionFalse, Reason: reason, Message: msg}
	if ok {
		c.Status = v1.ConditionTrue
	}
	return c
}

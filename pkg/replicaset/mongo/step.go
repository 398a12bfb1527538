// One Reconcile's working state (step): the agreed view of the set, the members' status, and
// initiating a set that is not yet initiated.

package mongo

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// step carries one Reconcile's working state.
type step struct {
	e      *Engine
	d      replicaset.Desired
	spec   *v1.MongoReplicaSet
	obs    replicaset.Observation
	probes []*probe // the desired members, in Desired order
	extra  []*probe // members no longer desired that are still in the config
	byHost map[string]*probe
	names  map[string]string // host -> member name
}

func (s *step) ready(status v1.ConditionStatus, reason v1.ConditionReason, format string, a ...any) {
	s.obs.Conditions = []v1.Condition{{Type: v1.ReplicaSetReady, Status: status, Reason: reason,
		Message: fmt.Sprintf(format, a...), LastTransitionTime: s.d.Now}}
}

func (s *step) act(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	s.obs.Actions = append(s.obs.Actions, line)
	s.e.log.Info("replica set step", "action", line)
}

// nameOf maps a config host to a member name; hosts of members no longer desired map to their
// first DNS label ("db-3.db:27017" -> "db-3"), which is the replica name under mesh naming.
func (s *step) nameOf(host string) string {
	if n, ok := s.names[host]; ok {
		return n
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	n, _, _ := strings.Cut(h, ".")
	return n
}

func (s *step) reconcile(ctx context.Context) error {
	set := s.spec.ReplSetName
	initiated := false
	for _, p := range s.probes {
		if p.initiated(set) || p.status != nil {
			initiated = true
		}
	}
	if !initiated {
		s.fillMembers(nil, "")
		return s.initiate(ctx)
	}
	view := s.bestView()
	statusPrimary := ""
	if view != nil {
		for _, m := range view.Members {
			if m.State == 1 {
				statusPrimary = m.Name
			}
		}
	}
	var selfPrimaries []string
	for _, p := range append(append([]*probe(nil), s.probes...), s.extra...) {
		if p.initiated(set) && p.hello.IsWritablePrimary {
			selfPrimaries = append(selfPrimaries, hostOf(p.m))
		}
	}
	agreed := statusPrimary != "" && len(selfPrimaries) == 1 && selfPrimaries[0] == statusPrimary
	if statusPrimary != "" {
		s.obs.Primary = s.nameOf(statusPrimary)
	} else if len(selfPrimaries) == 1 {
		s.obs.Primary = s.nameOf(selfPrimaries[0])
	}
	s.obs.PrimaryAgreed = agreed
	s.fillMembers(view, statusPrimary)
	if !agreed {
		return s.noPrimary(ctx, statusPrimary, selfPrimaries)
	}
	pv := view
	if pp := s.byHost[statusPrimary]; pp != nil && pp.status != nil {
		pv = pp.status
	}
	return s.converge(ctx, s.byHost[statusPrimary], pv)
}

// bestView is the replSetGetStatus with the highest term among the members that answered.
// Of equal terms, a view that shows a primary wins.
func (s *step) bestView() *statusReply {
	var best *statusReply
	hasPrimary := func(st *statusReply) bool {
		for _, m := range st.Members {
			if m.State == 1 {
				return true
			}
		}
		return false
	}
	for _, p := range append(append([]*probe(nil), s.probes...), s.extra...) {
		st := p.status
		if st == nil || st.Set != s.spec.ReplSetName {
			continue
		}
		if best == nil || st.Term > best.Term || (st.Term == best.Term && hasPrimary(st) && !hasPrimary(best)) {
			best = st
		}
	}
	return best
}

func (s *step) fillMembers(view *statusReply, primary string) {
	inView := map[string]statusMember{}
	if view != nil {
		for _, m := range view.Members {
			inView[m.Name] = m
		}
	}
	s.obs.Members = make([]v1.MemberStatus, len(s.d.Members))
	for i, m := range s.d.Members {
		ms := v1.MemberStatus{Name: m.Name, Role: RoleUnknown, Health: HealthUnknown}
		host := hostOf(m)
		p := s.byHost[host]
		if vm, ok := inView[host]; ok {
			switch {
			case vm.Health == 0:
				ms.Role, ms.Health = RoleUnreachable, HealthUnhealthy
			case host == primary:
				ms.Role, ms.Health = RolePrimary, HealthHealthy
			default:
				ms.Role, ms.Health = strings.ToLower(vm.StateStr), HealthHealthy
				if vm.State != 2 {
					ms.Health = HealthUnhealthy
				}
			}
		} else if view != nil {
			ms.Role = RoleNotMember
			if p != nil && p.reachable() {
				ms.Health = HealthHealthy
			} else {
				ms.Health = HealthUnhealthy
			}
		} else if p != nil && !p.reachable() {
			ms.Health = HealthUnhealthy
		}
		s.obs.Members[i] = ms
	}
}

// initiate runs replSetInitiate on the index-0 member with itself as the only member.
func (s *step) initiate(ctx context.Context) error {
	var first *probe
	for _, p := range s.probes {
		if p.m.Index == 0 {
			first = p
			break
		}
	}
	if first == nil {
		s.ready(v1.ConditionFalse, ReasonInitiating, "no member with index 0 to initiate the replica set on")
		return nil
	}
	if s.d.LastPrimary != "" {
		// A set that had a primary and now shows no config anywhere lost its members' data or is
		// unreachable; initiating again would fork it.
		s.ready(v1.ConditionFalse, ReasonNotInitiated, "no member answers with a replica set config, but %s was primary before; not initiating a new set over it", s.d.LastPrimary)
		return nil
	}
	if !first.reachable() {
		s.ready(v1.ConditionFalse, ReasonInitiating, "waiting for %s to answer before replSetInitiate: %v", first.m.Name, first.helloErr)
		return nil
	}
	if first.hello.SetName != "" || !first.hello.IsReplicaSet {
		s.ready(v1.ConditionFalse, ReasonConfigRejected, "%s answers setName %q, isreplicaset %v: not a member started with --replSet %s", first.m.Name, first.hello.SetName, first.hello.IsReplicaSet, s.spec.ReplSetName)
		return fmt.Errorf("replicasets/%s: %s is not an uninitialized member of replica set %q", s.e.name, first.m.Name, s.spec.ReplSetName)
	}
	prio := 1.0
	if v, ok := s.spec.Priorities[serviceOf(first.m)]; ok && v > 0 {
		prio = v
	}
	cfg := bson.D{{Key: "_id", Value: s.spec.ReplSetName}, {Key: "version", Value: int32(1)},
		{Key: "members", Value: bson.A{bson.D{{Key: "_id", Value: int32(0)}, {Key: "host", Value: hostOf(first.m)},
			{Key: "priority", Value: prio}, {Key: "votes", Value: int32(1)}}}}}
	err := s.e.run(ctx, first.m, 0, bson.D{{Key: "replSetInitiate", Value: cfg}}, nil)
	switch {
	case err == nil:
		s.act("replSetInitiate on %s", first.m.Name)
	case serverCode(err) == codeAlreadyInitialized:
		s.e.log.Info("replSetInitiate: already initialized", "member", first.m.Name)
	default:
		werr, transient := classify(err)
		s.ready(v1.ConditionFalse, ReasonInitiating, "replSetInitiate on %s: %v", first.m.Name, werr)
		if transient {
			return nil
		}
		return fmt.Errorf("replicasets/%s: replSetInitiate on %s: %w", s.e.name, first.m.Name, werr)
	}
	s.ready(v1.ConditionFalse, ReasonInitiating, "replica set %s initiated on %s; waiting for it to become primary", s.spec.ReplSetName, first.m.Name)
	return nil
}

func (s *step) namesOf(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, s.nameOf(h))
	}
	sort.Strings(out)
	return out
}

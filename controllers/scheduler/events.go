package scheduler

import (
	"fmt"
	"sort"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/events"
)

// eventComponent names the scheduler in the Events it reports.
const eventComponent = "scheduler"

// placementEvent is one Event the scheduler reports about a Service.
type placementEvent struct {
	Type    v1.EventType
	Reason  v1.EventReason
	Message string
}

// placementEvents compares the placement before and after a plan: a replica index placed on
// a node where it was not is Scheduled (first placement) or Moved (it was elsewhere; the
// message says why it left); replicas the plan could not place are FailedScheduling. Pure:
// the caller reports them once the placement is written.
func placementEvents(old, next []v1.Assignment, in Input, plan Plan) []placementEvent {
	before := nodesByIndex(old)
	after := nodesByIndex(next)
	nodes := map[string]NodeInfo{}
	for _, n := range in.Nodes {
		nodes[n.Name] = n
	}
	idxs := make([]int32, 0, len(after))
	for i := range after {
		idxs = append(idxs, i)
	}
	sort.Slice(idxs, func(a, b int) bool { return idxs[a] < idxs[b] })
	var out []placementEvent
	for _, i := range idxs {
		for _, n := range after[i] {
			if contains(before[i], n) {
				continue
			}
			from := before[i] // with a surge the old one stays a while: still replaced
			if len(from) == 0 {
				out = append(out, placementEvent{v1.EventNormal, v1.EventScheduled, fmt.Sprintf("replica %d placed on node %s", i, n)})
				continue
			}
			whys := make([]string, 0, len(from))
			for _, o := range from {
				whys = append(whys, leftBecause(o, i, nodes, in))
			}
			out = append(out, placementEvent{v1.EventNormal, v1.EventMoved,
				fmt.Sprintf("replica %d placed on node %s, replacing the one on %s: %s", i, n, strings.Join(from, ", "), strings.Join(whys, "; "))})
		}
	}
	if plan.Unplaced > 0 {
		msg := fmt.Sprintf("%d replica(s) found no node", plan.Unplaced)
		if m := plan.Progressing.Message; m != "" {
			msg += ": " + m
		}
		out = append(out, placementEvent{v1.EventWarning, v1.EventFailedScheduling, msg})
	}
	return out
}

// leftBecause says why replica idx does not stay (only) on node name.
func leftBecause(name string, idx int32, nodes map[string]NodeInfo, in Input) string {
	n, ok := nodes[name]
	switch {
	case !ok:
		return fmt.Sprintf("node %s is gone", name)
	case !n.Healthy && !n.Held:
		return fmt.Sprintf("node %s is lost", name)
	case n.Drain:
		return fmt.Sprintf("node %s is draining", name)
	case n.NoRuntime:
		return fmt.Sprintf("node %s runs no containers", name)
	case !selectorMatches(in.NodeSelector, n.Labels):
		return fmt.Sprintf("node %s no longer matches spec.placement.nodeSelector", name)
	case in.Avoid[name]:
		return fmt.Sprintf("egress healing gave up on node %s", name)
	}
	if r, ok := in.Observed[idx]; ok && r.Node == name && r.Failed {
		return fmt.Sprintf("the replica failed there (%s)", r.Reason)
	}
	if r, ok := in.Observed[idx]; ok && r.Node == name && r.SpecHash != in.SpecHash {
		return "rolling update to the new revision"
	}
	return "spreading replicas across nodes"
}

func selectorMatches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func nodesByIndex(as []v1.Assignment) map[int32][]string {
	out := map[int32][]string{}
	for _, a := range as {
		if !contains(out[a.Index], a.Node) {
			out[a.Index] = append(out[a.Index], a.Node)
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// report hands the events of one written plan to the recorder (nil: none).
func report(rec *events.Recorder, service string, evs []placementEvent) {
	for _, e := range evs {
		rec.Eventf(events.Ref(v1.KindService, service), e.Type, e.Reason, eventComponent, "%s", e.Message)
	}
}

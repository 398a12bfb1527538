package nodehealth

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// Verdict is what the cluster may conclude about a node.
type Verdict string

// Verdicts. Only Lost lets a consumer act on a node's absence (re-place its replicas, delete
// its DNS records, drop its endpoints), and only while the disruption brake does not hold.
const (
	// Ready: alive in gossip (or, without a gossip view, Ready in the store).
	Ready Verdict = "Ready"
	// Restarting: its agent stopped gracefully and said its containers keep running; believed
	// until the restart grace period ends, then Lost.
	Restarting Verdict = "Restarting"
	// Unknown: not observed. Absent from this agent's gossip view and with no positive verdict
	// recorded in the store: "I cannot see it" is not "it is gone".
	Unknown Verdict = "Unknown"
	// Lost: a positive verdict: declared dead by the failure detector, left without the restart
	// marker, or restarting for longer than the grace period.
	Lost Verdict = "Lost"
)

// Policy holds the timings of the verdicts.
type Policy struct {
	// RestartGrace is how long a node whose agent stopped gracefully keeps its replicas,
	// endpoints and DNS records before it counts as lost. Default 60s (DefaultRestartGrace).
	RestartGrace time.Duration
}

// DefaultRestartGrace covers an agent upgrade or restart by its supervisor with a wide margin;
// a machine reboot that takes longer is re-placed once it expires.
const DefaultRestartGrace = 60 * time.Second

func (p Policy) withDefaults() Policy {
	if p.RestartGrace <= 0 {
		p.RestartGrace = DefaultRestartGrace
	}
	return p
}

// Input is what a verdict is made from.
type Input struct {
	// Nodes are the Node objects in the store (may be empty). Their Ready condition, written by
	// the status controller on a positive verdict, is the durable record of a loss: it still
	// counts when gossip has forgotten the node.
	Nodes []*v1.Node
	// View is this agent's gossip view.
	View []observed.Node
	// NoView: there is no gossip at all (a store-only test or tool); the store's Ready condition
	// is then taken as observed truth. An empty View counts as none: an agent's own gossip
	// always lists the agent itself.
	NoView bool
	Now    time.Time
	Policy Policy
}

// Node is the verdict on one node, with what every consumer matches it by.
type Node struct {
	Name    string
	Verdict Verdict
	// Reason is a v1 Node condition reason explaining the verdict; Message says it in words.
	Reason  v1.ConditionReason
	Message string
	// Since is when the node entered its current state, when known.
	Since time.Time
	// RecheckAt is when the verdict changes by itself (the restart grace ends); zero if never.
	RecheckAt time.Time
	// Labels are the node's effective labels: gossip's, overlaid by v1.Node.EffectiveLabels.
	Labels map[string]string
	// Address is the advertise address (host only) from the Node object, else from gossip.
	Address string
	// Unschedulable and Drain come from the Node object's spec.
	Unschedulable, Drain bool
	// NoRuntime: the agent runs without Docker (gossip label constellation.io/runtime=none).
	NoRuntime bool
	// Registered: a Node object exists.
	Registered bool
}

// Report is the verdict on every node known to the store or the view.
type Report struct {
	// Nodes are sorted by name.
	Nodes []Node
	// NotReady counts nodes whose verdict is not Ready; Total counts all.
	NotReady, Total int
	// Braked: more than half of the nodes are not Ready at once. The view is then more likely
	// wrong than half the cluster gone: no consumer acts on a loss (see Acts).
	Braked bool
	byName map[string]int
}

// Evaluate gives every node its verdict. It is pure: the same input gives the same report.
func Evaluate(in Input) Report {
	p := in.Policy.withDefaults()
	if len(in.View) == 0 {
		in.NoView = true
	}
	type both struct {
		view *observed.Node
		node *v1.Node
	}
	byName := map[string]*both{}
	get := func(name string) *both {
		b := byName[name]
		if b == nil {
			b = &both{}
			byName[name] = b
		}
		return b
	}
	if !in.NoView {
		for i := range in.View {
			get(in.View[i].Name).view = &in.View[i]
		}
	}
	for _, n := range in.Nodes {
		if n != nil {
			get(n.Metadata.Name).node = n
		}
	}
	rep := Report{Nodes: make([]Node, 0, len(byName)), byName: make(map[string]int, len(byName))}
	for name, b := range byName {
		out := Node{Name: name, Labels: map[string]string{}}
		if v := b.view; v != nil {
			for k, val := range v.Labels {
				out.Labels[k] = val
			}
			out.Address = v.Advertise
		}
		if n := b.node; n != nil {
			out.Registered = true
			for k, val := range n.EffectiveLabels() {
				out.Labels[k] = val
			}
			out.Unschedulable, out.Drain = n.Spec.Unschedulable, n.Spec.Drain
			if a := n.Status.Addresses.Advertise; a != "" {
				out.Address = a
			}
		}
		out.Address = hostOnly(out.Address)
		out.NoRuntime = out.Labels[observed.LabelRuntime] == observed.RuntimeNone
		if b.view != nil {
			judgeView(&out, *b.view, in.Now, p)
		} else {
			judgeStore(&out, b.node, in.NoView, in.Now, p)
		}
		rep.Nodes = append(rep.Nodes, out)
	}
	sort.Slice(rep.Nodes, func(i, j int) bool { return rep.Nodes[i].Name < rep.Nodes[j].Name })
	for i, n := range rep.Nodes {
		rep.byName[n.Name] = i
		if n.Verdict != Ready {
			rep.NotReady++
		}
	}
	rep.Total = len(rep.Nodes)
	rep.Braked = rep.Total > 1 && rep.NotReady*2 > rep.Total
	return rep
}

// judgeView decides from this agent's gossip view, which knows the node.
func judgeView(out *Node, v observed.Node, now time.Time, p Policy) {
	out.Since = v.LastChange
	switch {
	case v.Alive:
		out.Verdict, out.Reason, out.Message = Ready, v1.ReasonNodeAlive, "alive in gossip"
	case v.State == observed.StateRestarting:
		restarting(out, v.LastChange, now, p)
	case v.State == observed.StateLeft:
		out.Verdict, out.Reason, out.Message = Lost, v1.ReasonNodeLeft, "left the cluster"
	default:
		out.Verdict, out.Reason, out.Message = Lost, v1.ReasonNodeDead, "declared dead by the gossip failure detector"
	}
}

// judgeStore decides for a node this agent's gossip does not know, from what the status
// controller recorded in the Node object.
func judgeStore(out *Node, n *v1.Node, noView bool, now time.Time, p Policy) {
	var c *v1.Condition
	if n != nil {
		c = v1.FindCondition(n.Status.Conditions, v1.NodeReady)
	}
	if c != nil {
		out.Since = c.LastTransitionTime
	}
	switch {
	case c == nil:
		out.Verdict, out.Reason, out.Message = Unknown, v1.ReasonNodeUnknown, "no Ready condition recorded and not in the gossip view"
		if noView {
			out.Message = "no Ready condition recorded"
		}
	case c.Reason == v1.ReasonNodeRestarting:
		restarting(out, c.LastTransitionTime, now, p)
	case c.Status == v1.ConditionTrue && noView:
		out.Verdict, out.Reason, out.Message = Ready, c.Reason, "Ready in the store"
	case c.Status == v1.ConditionTrue, c.Status == v1.ConditionUnknown:
		out.Verdict, out.Reason, out.Message = Unknown, v1.ReasonNodeUnknown, "not in this agent's gossip view"
	default: // False: a loss recorded on a positive verdict
		out.Verdict, out.Reason = Lost, c.Reason
		out.Message = "recorded lost: " + c.Message
	}
}

func restarting(out *Node, since time.Time, now time.Time, p Policy) {
	out.Reason = v1.ReasonNodeRestarting
	end := since.Add(p.RestartGrace)
	if since.IsZero() || now.Before(end) {
		out.Verdict = Restarting
		out.Message = fmt.Sprintf("agent stopped gracefully, containers keep running; replicas kept for the %s restart grace", p.RestartGrace)
		if !since.IsZero() {
			out.RecheckAt = end
		}
		return
	}
	out.Verdict = Lost
	out.Message = fmt.Sprintf("agent stopped gracefully but did not return within the %s restart grace", p.RestartGrace)
}

// Get returns the verdict on name.
func (r Report) Get(name string) (Node, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Node{}, false
	}
	return r.Nodes[i], true
}

// Verdict returns the verdict on name; a node neither the store nor the view knows is Lost
// (its Node object was deleted: it was removed from the cluster).
func (r Report) Verdict(name string) Verdict {
	if n, ok := r.Get(name); ok {
		return n.Verdict
	}
	return Lost
}

// Acts reports whether a consumer may act on name's absence now: the node is Lost and the
// disruption brake does not hold.
func (r Report) Acts(name string) bool { return r.Verdict(name) == Lost && !r.Braked }

// Keeps reports whether what runs on name stays where it is: every verdict but an actionable
// Lost (Ready, Restarting, Unknown, or Lost under the brake).
func (r Report) Keeps(name string) bool { return !r.Acts(name) }

// NextRecheck is the earliest time a verdict changes by itself; zero if none will.
func (r Report) NextRecheck() time.Time {
	var t time.Time
	for _, n := range r.Nodes {
		if !n.RecheckAt.IsZero() && (t.IsZero() || n.RecheckAt.Before(t)) {
			t = n.RecheckAt
		}
	}
	return t
}

// BrakeMessage explains the brake in one line ("" when it does not hold).
func (r Report) BrakeMessage() string {
	if !r.Braked {
		return ""
	}
	var names []string
	for _, n := range r.Nodes {
		if n.Verdict != Ready {
			names = append(names, n.Name+" ("+strings.ToLower(string(n.Verdict))+")")
		}
	}
	return fmt.Sprintf("disruption brake: %d of %d nodes look lost at once (%s); nothing is re-placed or deleted until more than half are Ready, or an operator removes the lost nodes (ctl node remove)",
		r.NotReady, r.Total, strings.Join(names, ", "))
}

func hostOnly(addr string) string {
	if addr == "" {
		return ""
	}
	if net.ParseIP(addr) != nil {
		return addr
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

package dns

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// Cluster is the snapshot targets are resolved against.
type Cluster struct {
	Nodes  []*v1.Node
	Leases map[string]*v1.Lease
	// View is gossip's view of the nodes (nil when there is none).
	View []observed.Node
	Now  time.Time
	// Grace: a node lost less than Grace ago still counts as Present.
	Grace time.Duration
	// Health holds the node-health timings (the restart grace).
	Health nodehealth.Policy
}

// NodeState is a node as DNS sees it.
type NodeState struct {
	Name    string
	Labels  map[string]string
	Address string // the advertise address, without port
	// Present: its addresses belong in records (see NodeStates).
	Present bool
	// NotReady: its verdict is not Ready; counted by the disruption brake.
	NotReady bool
	// RecheckAt is when Present turns false by itself (the grace period ends); zero if never.
	RecheckAt time.Time
	// Known: the node has a Node object or is in the gossip view.
	Known bool
	// Down: pkg/nodehealth judged it Lost, a positive verdict (dead, left for good, restarting
	// past its grace, or a loss recorded in its Node object). Absence from this agent's gossip
	// view is not Down.
	Down bool
	// DownSince is when the earliest of those verdicts was given (zero when unknown).
	DownSince time.Time
}

// NodeStates gives every node DNS's view of it, from the one node-health rule
// (pkg/nodehealth): a Ready, restarting (within its restart grace) or merely unseen node is
// Present, since "I cannot see it" is not "it is gone" and its addresses stay where they are; a
// Lost node stays Present for Grace after its loss (a flap does not rewrite records).
func (c Cluster) NodeStates() []NodeState {
	rep := nodehealth.Evaluate(nodehealth.Input{Nodes: c.Nodes, View: c.View, NoView: c.View == nil, Now: c.Now, Policy: c.Health})
	out := make([]NodeState, 0, len(rep.Nodes))
	for _, n := range rep.Nodes {
		st := NodeState{Name: n.Name, Labels: n.Labels, Address: n.Address, Known: true, NotReady: n.Verdict != nodehealth.Ready}
		switch n.Verdict {
		case nodehealth.Ready, nodehealth.Unknown:
			st.Present = true
		case nodehealth.Restarting:
			st.Present, st.RecheckAt = true, n.RecheckAt
		case nodehealth.Lost:
			st.Down, st.DownSince = true, n.Since
			if !n.Since.IsZero() && c.Now.Sub(n.Since) < c.Grace {
				st.Present, st.RecheckAt = true, n.Since.Add(c.Grace)
			}
		}
		out = append(out, st)
	}
	return out
}

// addressFor returns addr if it is an IP of the family typ (A: IPv4, AAAA: IPv6).
func addressFor(addr, typ string) (string, bool) {
	ip := net.ParseIP(addr)
	if ip == nil {
		return "", false
	}
	switch {
	case typ == string(v1.RecordA) && ip.To4() != nil:
		return ip.To4().String(), true
	case typ == string(v1.RecordAAAA) && ip.To4() == nil:
		return ip.String(), true
	}
	return "", false
}

// Want is the records wanted for one DNSRecord, or why there are none.
type Want struct {
	Records []cloudflare.Record
	// NoTarget, when set, says why the target resolves to nothing. The records in place are then
	// left as they are: a name that answers a stale address beats one that answers nothing.
	NoTarget string
	// RecheckAt is when the wanted records may change by themselves (a grace period ends).
	RecheckAt time.Time
}

// Digest identifies the wanted state, to tell whether it changed.
func (w Want) Digest() string {
	rs := normalizeAll(w.Records)
	sortRecords(rs)
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s %s %d %t|", r.Type, r.Name, r.Content, r.TTL, r.Proxied)
	}
	if w.NoTarget != "" {
		b.WriteString("notarget:" + w.NoTarget)
	}
	return b.String()
}

// Owner returns the ownership comment of a DNSRecord's records.
func Owner(cluster, dnsRecord string) string { return "constellation:" + cluster + "/" + dnsRecord }

// NodeOwner returns the ownership comment of a node's own record.
func NodeOwner(cluster, node string) string { return "constellation:" + cluster + "/node:" + node }

// WantedRecords resolves a (valid, defaulted) DNSRecord against the cluster.
func WantedRecords(d *v1.DNSRecord, c Cluster, owner string) Want {
	s := d.Spec
	base := cloudflare.Record{Type: string(s.Type), Name: s.Name, TTL: s.TTL, Proxied: s.Proxied, Comment: owner}
	if base.TTL == 0 {
		base.TTL = v1.DefaultDNSTTL
	}
	with := func(content string) cloudflare.Record { r := base; r.Content = content; return Normalize(r) }
	if s.Target == nil {
		return Want{Records: []cloudflare.Record{with(s.Content)}}
	}
	nodes := c.NodeStates()
	if s.Target.Lease != "" {
		l := c.Leases[s.Target.Lease]
		if l == nil {
			return Want{NoTarget: fmt.Sprintf("lease %q does not exist", s.Target.Lease)}
		}
		holder := l.Spec.HolderIdentity
		if holder == "" {
			return Want{NoTarget: fmt.Sprintf("lease %q has no holder", s.Target.Lease)}
		}
		for _, n := range nodes {
			if n.Name != holder {
				continue
			}
			if addr, ok := addressFor(n.Address, base.Type); ok {
				return Want{Records: []cloudflare.Record{with(addr)}}
			}
			return Want{NoTarget: fmt.Sprintf("node %q, holder of lease %q, has no %s address (advertise %q)", holder, s.Target.Lease, base.Type, n.Address)}
		}
		return Want{NoTarget: fmt.Sprintf("holder %q of lease %q is not a known node", holder, s.Target.Lease)}
	}
	sel := v1.SelectorFromMap(s.Target.NodeSelector)
	var w Want
	for _, n := range nodes {
		if !n.Present || !sel.Matches(n.Labels) {
			continue
		}
		if addr, ok := addressFor(n.Address, base.Type); ok {
			w.Records = append(w.Records, with(addr))
			w.RecheckAt = earliest(w.RecheckAt, n.RecheckAt)
		}
	}
	if len(w.Records) == 0 {
		return Want{NoTarget: fmt.Sprintf("no Ready node with a %s address matches nodeSelector %s", base.Type, sel)}
	}
	return w
}

// nodeLost reports whether a node's own record may be deleted: pkg/nodehealth judged it Lost
// and its DNS grace has passed (or it has no Node object and gossip does not know it).
func (c Cluster) nodeLost(n NodeState) bool {
	return !n.Known || (n.Down && !n.Present)
}

// braked is the disruption brake (the rule of nodehealth.Report.Braked, counted over what DNS
// knows): when more than half of the nodes look lost at once, the
// likelier story is that this agent is cut off (its gossip isolated, its store behind), not
// that the cluster died, and DNS deletes nothing until the picture clears
// (kube-controller-manager's --unhealthy-zone-threshold, Nomad's heartbeat grace).
func braked(lost, total int) bool { return lost > 0 && 2*lost > total }

type brakeState struct {
	lost, total int
	on          bool
}

// brake applies the disruption brake to the nodes the cluster knows.
func (c Cluster) brake() brakeState {
	var b brakeState
	for _, n := range c.NodeStates() {
		b.total++
		if n.NotReady {
			b.lost++
		}
	}
	b.on = braked(b.lost, b.total)
	return b
}

// NodeRecordsWant is what the per-node records should be.
type NodeRecordsWant struct {
	Want
	// Keep holds the owners (NodeOwner) of the nodes that are neither Ready nor lost: their
	// records stay exactly as they are, neither deleted nor changed.
	Keep map[string]bool
	// Known holds the owners of every node the cluster knows (Node object or gossip).
	Known map[string]bool
	// Lost is how many known nodes look lost (not Ready), of len(Known): the disruption brake
	// counts them.
	Lost int
}

// WantedNodeRecords returns <node>.<zone> for every present node with an address, the nodes
// whose records must be left alone, and when that may change by itself.
func WantedNodeRecords(zone string, ttl int, cluster string, c Cluster) NodeRecordsWant {
	w := NodeRecordsWant{Keep: map[string]bool{}, Known: map[string]bool{}}
	zone = strings.TrimSuffix(strings.ToLower(zone), ".")
	for _, n := range c.NodeStates() {
		owner := NodeOwner(cluster, n.Name)
		w.Known[owner] = true
		if n.NotReady {
			w.Lost++
		}
		if c.nodeLost(n) {
			continue
		}
		if !n.Present {
			w.Keep[owner] = true
			if n.Down && !n.DownSince.IsZero() {
				w.RecheckAt = earliest(w.RecheckAt, n.DownSince.Add(c.Grace))
			}
			continue
		}
		if !v1.IsDNSLabel(n.Name) {
			continue
		}
		typ := string(v1.RecordA)
		addr, ok := addressFor(n.Address, typ)
		if !ok {
			typ = string(v1.RecordAAAA)
			if addr, ok = addressFor(n.Address, typ); !ok {
				w.Keep[owner] = true // Ready without a usable address: not a reason to delete
				continue
			}
		}
		w.Records = append(w.Records, Normalize(cloudflare.Record{Type: typ, Name: n.Name + "." + zone, Content: addr, TTL: ttl, Comment: owner}))
		w.RecheckAt = earliest(w.RecheckAt, n.RecheckAt)
	}
	return w
}

// Digest identifies the wanted state, to tell whether it changed.
func (w NodeRecordsWant) Digest() string {
	keep := make([]string, 0, len(w.Keep))
	for o := range w.Keep {
		keep = append(keep, o)
	}
	sort.Strings(keep)
	return w.Want.Digest() + fmt.Sprintf("keep:%s|lost:%d/%d", strings.Join(keep, ","), w.Lost, len(w.Known))
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

package dns

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// Cluster is the snapshot targets are resolved against.
type Cluster struct {
	Nodes  []*v1.Node
	Leases map[string]*v1.Lease
	// View is gossip's view of the nodes (nil when there is none).
	View []observed.Node
	Now  time.Time
	// Grace: a node that stopped being Ready less than Grace ago still counts as Ready.
	Grace time.Duration
}

// NodeState is a node as DNS sees it.
type NodeState struct {
	Name    string
	Labels  map[string]string
	Address string // the advertise address, without port
	// Present: Ready, or not Ready for less than the grace period.
	Present bool
	// RecheckAt is when Present turns false by itself (the grace period ends); zero if never.
	RecheckAt time.Time
}

// NodeStates merges Node objects and the gossip view. A node is Ready when its Node object's
// Ready condition is True (for a node only gossip knows: when gossip sees it alive) and gossip
// does not see it dead. A node not Ready since less than Grace ago is still Present.
func (c Cluster) NodeStates() []NodeState {
	type both struct {
		view *observed.Node
		node *v1.Node
	}
	byName := map[string]*both{}
	get := func(name string) *both {
		if byName[name] == nil {
			byName[name] = &both{}
		}
		return byName[name]
	}
	for i := range c.View {
		get(c.View[i].Name).view = &c.View[i]
	}
	for _, n := range c.Nodes {
		get(n.Metadata.Name).node = n
	}
	out := make([]NodeState, 0, len(byName))
	for name, b := range byName {
		st := NodeState{Name: name, Labels: map[string]string{}}
		ready := true
		var since time.Time // when it stopped being Ready, by the earliest account
		if v := b.view; v != nil {
			for k, val := range v.Labels {
				st.Labels[k] = val
			}
			st.Address = v.Advertise
			if !v.Alive {
				ready, since = false, v.LastChange
			}
		}
		if n := b.node; n != nil {
			for k, val := range n.Metadata.Labels {
				st.Labels[k] = val
			}
			for k, val := range n.Spec.Labels {
				st.Labels[k] = val
			}
			if a := n.Status.Addresses.Advertise; a != "" {
				st.Address = a
			}
			cond := v1.FindCondition(n.Status.Conditions, v1.NodeReady)
			if cond == nil || cond.Status != v1.ConditionTrue {
				ready = false
				if cond != nil {
					since = earliest(since, cond.LastTransitionTime)
				}
			}
		}
		st.Address = hostOnly(st.Address)
		switch {
		case ready:
			st.Present = true
		case !since.IsZero() && c.Now.Sub(since) < c.Grace:
			st.Present = true
			st.RecheckAt = since.Add(c.Grace)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func hostOnly(addr string) string {
	if net.ParseIP(addr) != nil {
		return addr
	}
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
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

// WantedNodeRecords returns <node>.<zone> for every present node with an address, and when that
// set may change by itself.
func WantedNodeRecords(zone string, ttl int, cluster string, c Cluster) Want {
	var w Want
	zone = strings.TrimSuffix(strings.ToLower(zone), ".")
	for _, n := range c.NodeStates() {
		if !n.Present || !v1.IsDNSLabel(n.Name) {
			continue
		}
		typ := string(v1.RecordA)
		addr, ok := addressFor(n.Address, typ)
		if !ok {
			typ = string(v1.RecordAAAA)
			if addr, ok = addressFor(n.Address, typ); !ok {
				continue
			}
		}
		w.Records = append(w.Records, Normalize(cloudflare.Record{Type: typ, Name: n.Name + "." + zone, Content: addr, TTL: ttl, Comment: NodeOwner(cluster, n.Name)}))
		w.RecheckAt = earliest(w.RecheckAt, n.RecheckAt)
	}
	return w
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

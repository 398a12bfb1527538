package ctl

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// table is rows of cells under a header.
type table struct {
	header []string
	rows   [][]string
}

// Layout of tables, as kubectl's: minimum cell width 6, 3 spaces between columns.
const (
	tabMinWidth = 6
	tabPadding  = 3
)

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, tabMinWidth, 4, tabPadding, ' ', 0)
}

// write prints the table aligned, header first unless noHeader.
func (t table) write(w io.Writer, noHeader bool) error {
	tw := newTabWriter(w)
	if !noHeader {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// widths are the cell widths tabwriter gives the table, so that rows printed later (get -w)
// line up with it.
func (t table) widths() []int {
	ws := make([]int, len(t.header))
	measure := func(r []string) {
		for i, c := range r {
			if i < len(ws) {
				ws[i] = max(ws[i], utf8.RuneCountInString(c))
			}
		}
	}
	measure(t.header)
	for _, r := range t.rows {
		measure(r)
	}
	for i := range ws {
		ws[i] = max(tabMinWidth, ws[i]+tabPadding)
	}
	return ws
}

// padRow formats one row to widths; the last cell is not padded.
func padRow(r []string, widths []int) string {
	var b strings.Builder
	for i, c := range r {
		b.WriteString(c)
		if i < len(r)-1 && i < len(widths) {
			if n := widths[i] - utf8.RuneCountInString(c); n > 0 {
				b.WriteString(strings.Repeat(" ", n))
			} else {
				b.WriteString(strings.Repeat(" ", tabPadding))
			}
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// printer renders one kind's table.
type printer struct {
	header func(wide bool) []string
	row    func(o v1.Object, wide bool, now time.Time) []string
}

var printers = map[string]printer{
	v1.KindService:    {serviceHeader, serviceRow},
	v1.KindNode:       {nodeHeader, nodeRow},
	v1.KindDNSRecord:  {dnsHeader, dnsRow},
	v1.KindLease:      {leaseHeader, leaseRow},
	v1.KindReplicaSet: {replicaSetHeader, replicaSetRow},
	v1.KindSecret:     {secretHeader, secretRow},
}

// objectTable builds the table of objects of one kind.
func objectTable(kind string, objs []v1.Object, wide bool, now time.Time) table {
	p := printers[kind]
	t := table{header: p.header(wide)}
	for _, o := range objs {
		t.rows = append(t.rows, p.row(o, wide, now))
	}
	return t
}

func none(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func joinOrNone(ss []string) string { return none(strings.Join(ss, ",")) }

func labelString(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + ls[k]
	}
	return joinOrNone(parts)
}

// --- services

func serviceHeader(wide bool) []string {
	h := []string{"NAME", "IMAGE", "READY", "UP-TO-DATE", "STATUS"}
	if wide {
		h = append(h, "VIRTUAL-IP", "PORTS", "ROUTES", "NODES", "HOST-ACCESS")
	}
	return append(h, "AGE")
}

func serviceRow(o v1.Object, wide bool, now time.Time) []string {
	s := o.(*v1.Service)
	desired := s.DesiredReplicas()
	r := []string{
		s.Metadata.Name,
		s.Spec.Image,
		fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, desired),
		strconv.Itoa(int(s.Status.UpdatedReplicas)),
		serviceStatus(s),
	}
	if wide {
		r = append(r, none(s.Status.VirtualIP), servicePorts(s), serviceRoutes(s), serviceNodes(s), serviceHostAccess(&s.Spec))
	}
	return append(r, age(now, s.Metadata.CreationTimestamp))
}

// serviceHostAccess marks a Service that reaches into its nodes: what it uses ("bind",
// "privileged", "hostNetwork", "hostPID", "capAdd"), "opt-in" when it opts in but uses nothing yet, "-" when
// neither. A Service using host access without the opt-in (stored before it existed) shows
// "unapproved:" before what it uses: nodes refuse to create its containers.
func serviceHostAccess(sp *v1.ServiceSpec) string {
	uses := strings.Join(sp.HostAccessUses(), ",")
	switch {
	case uses != "" && sp.HostAccess:
		return uses
	case uses != "":
		return "unapproved:" + uses
	case sp.HostAccess:
		return "opt-in"
	}
	return "-"
}

// serviceStatus is one word for the STATUS column: a Degraded reason wins, then a rollout in
// progress, then a failed rollout, then Ready, then why it is not ready.
func serviceStatus(s *v1.Service) string {
	conds := s.Status.Conditions
	if d := v1.FindCondition(conds, v1.ServiceDegraded); d != nil && d.Status == v1.ConditionTrue {
		if d.Reason != "" {
			return string(d.Reason)
		}
		return "Degraded"
	}
	if s.Status.ObservedGeneration < s.Metadata.Generation && len(conds) > 0 {
		return "Progressing"
	}
	p := v1.FindCondition(conds, v1.ServiceProgressing)
	if p != nil && p.Status == v1.ConditionTrue && p.Reason != v1.ReasonRolloutComplete {
		return "Progressing"
	}
	if p != nil && p.Status == v1.ConditionFalse && p.Reason != "" && p.Reason != v1.ReasonRolloutComplete {
		return string(p.Reason)
	}
	if r := v1.FindCondition(conds, v1.ServiceReady); r != nil {
		if r.Status == v1.ConditionTrue {
			return "Ready"
		}
		if r.Reason != "" {
			return string(r.Reason)
		}
		return "NotReady"
	}
	return "Pending"
}

func servicePorts(s *v1.Service) string {
	var ps []string
	for _, p := range s.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		v := fmt.Sprintf("%d/%s", p.ContainerPort, proto)
		if p.Name != "" {
			v = p.Name + ":" + v
		}
		ps = append(ps, v)
	}
	return joinOrNone(ps)
}

func serviceRoutes(s *v1.Service) string {
	var rs []string
	if r := s.Spec.Routes; r != nil {
		for _, h := range r.HTTP {
			v := h.Host
			if h.PathPrefix != "" && h.PathPrefix != "/" {
				v += h.PathPrefix
			}
			rs = append(rs, v)
		}
		for _, t := range r.TCP {
			rs = append(rs, "tcp:"+t.HostSNI)
		}
		for _, u := range r.UDP {
			rs = append(rs, "udp:"+u.EntryPoint)
		}
	}
	return joinOrNone(rs)
}

// serviceNodes lists the nodes running replicas (observed), else those they are assigned to.
func serviceNodes(s *v1.Service) string {
	seen := map[string]bool{}
	for _, r := range s.Status.ReplicaStatuses {
		if r.Node != "" {
			seen[r.Node] = true
		}
	}
	if len(seen) == 0 {
		for _, a := range s.Status.Assignments {
			if a.Node != "" {
				seen[a.Node] = true
			}
		}
	}
	nodes := make([]string, 0, len(seen))
	for n := range seen {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	return joinOrNone(nodes)
}

// --- nodes

func nodeHeader(wide bool) []string {
	h := []string{"NAME", "STATUS", "ROLE", "GOSSIP", "ADDRESS", "VERSION", "AGE"}
	if wide {
		h = append(h, "LABELS")
	}
	return h
}

func nodeRow(o v1.Object, wide bool, now time.Time) []string {
	n := o.(*v1.Node)
	r := []string{
		n.Metadata.Name,
		nodeStatus(n),
		none(string(n.Status.RaftRole)),
		none(n.Status.GossipState),
		none(n.Status.Addresses.Advertise),
		none(n.Status.AgentVersion),
		age(now, n.Metadata.CreationTimestamp),
	}
	if wide {
		r = append(r, labelString(n.EffectiveLabels()))
	}
	return r
}

func nodeStatus(n *v1.Node) string {
	st := "NotReady"
	switch c := v1.FindCondition(n.Status.Conditions, v1.NodeReady); {
	case c == nil:
		st = "Unknown"
	case c.Reason == v1.ReasonNodeRestarting:
		st = "Restarting" // its containers keep running; nothing moves within the restart grace
	case c.Status == v1.ConditionTrue:
		st = "Ready"
	case c.Status == v1.ConditionUnknown:
		st = "Unknown"
	}
	if n.Spec.Unschedulable || n.Spec.Drain {
		st += ",SchedulingDisabled"
	}
	if n.Spec.Drain {
		st += ",Draining"
	}
	return st
}

// quorumNote says how many voters the store has and what they survive (DESIGN: quorum needs
// three).
func quorumNote(nodes []v1.Object) string {
	voters := 0
	for _, o := range nodes {
		switch o.(*v1.Node).Status.RaftRole {
		case v1.RaftLeader, v1.RaftFollower:
			voters++
		}
	}
	switch {
	case voters == 0:
		return "0 voters: no node reports a raft role yet (an agent on the in-memory store has none)"
	case voters < 3:
		noun := "voters"
		if voters == 1 {
			noun = "voter"
		}
		return fmt.Sprintf("%d %s: this cluster cannot survive the loss of a node (quorum needs 3 voters)", voters, noun)
	}
	return fmt.Sprintf("%d voters: survives the loss of %d", voters, (voters-1)/2)
}

// --- dnsrecords

func dnsHeader(bool) []string {
	return []string{"NAME", "TYPE", "RECORD", "CONTENT", "SYNCED", "AGE"}
}

func dnsRow(o v1.Object, _ bool, now time.Time) []string {
	d := o.(*v1.DNSRecord)
	return []string{
		d.Metadata.Name,
		string(d.Spec.Type),
		d.Spec.Name,
		dnsContent(d),
		conditionCell(d.Status.Conditions, v1.DNSSynced),
		age(now, d.Metadata.CreationTimestamp),
	}
}

func dnsContent(d *v1.DNSRecord) string {
	if len(d.Status.Records) > 0 {
		cs := make([]string, len(d.Status.Records))
		for i, r := range d.Status.Records {
			cs[i] = r.Content
		}
		return strings.Join(cs, ",")
	}
	switch t := d.Spec.Target; {
	case d.Spec.Content != "":
		return d.Spec.Content
	case t != nil && t.Lease != "":
		return "<lease " + t.Lease + ">"
	case t != nil && t.NodeSelector != nil:
		return "<nodes " + labelString(t.NodeSelector) + ">"
	}
	return "<none>"
}

// conditionCell is a condition's status, with its reason when it is not True.
func conditionCell(conds []v1.Condition, t v1.ConditionType) string {
	c := v1.FindCondition(conds, t)
	if c == nil {
		return string(v1.ConditionUnknown)
	}
	if c.Status != v1.ConditionTrue && c.Reason != "" {
		return string(c.Status) + " (" + string(c.Reason) + ")"
	}
	return string(c.Status)
}

// --- leases

func leaseHeader(bool) []string {
	return []string{"NAME", "HOLDER", "DURATION", "RENEWED", "AGE"}
}

func leaseRow(o v1.Object, _ bool, now time.Time) []string {
	l := o.(*v1.Lease)
	dur := "<none>"
	if l.Spec.LeaseDurationSeconds > 0 {
		dur = fmt.Sprintf("%ds", l.Spec.LeaseDurationSeconds)
	}
	renewed := "<never>"
	if l.Spec.RenewTime != nil {
		renewed = age(now, l.Spec.RenewTime) + " ago"
	}
	return []string{l.Metadata.Name, none(l.Spec.HolderIdentity), dur, renewed, age(now, l.Metadata.CreationTimestamp)}
}

// --- replicasets

func replicaSetHeader(wide bool) []string {
	h := []string{"NAME", "ENGINE", "PRIMARY", "MEMBERS", "HEALTHY", "AGE"}
	if wide {
		h = append(h, "AGREED", "SERVICES")
	}
	return h
}

func replicaSetRow(o v1.Object, wide bool, now time.Time) []string {
	r := o.(*v1.ReplicaSet)
	healthy := 0
	for _, m := range r.Status.Members {
		if m.Health == "healthy" {
			healthy++
		}
	}
	row := []string{
		r.Metadata.Name,
		string(r.Spec.Engine),
		none(r.Status.Primary),
		strconv.Itoa(len(r.Status.Members)),
		fmt.Sprintf("%d/%d", healthy, len(r.Status.Members)),
		age(now, r.Metadata.CreationTimestamp),
	}
	if wide {
		row = append(row, conditionCell(r.Status.Conditions, v1.ReplicaSetPrimaryAgreed), joinOrNone(r.Spec.Members))
	}
	return row
}

// --- secrets: key names only, never values.

func secretHeader(bool) []string { return []string{"NAME", "KEYS", "AGE"} }

func secretRow(o v1.Object, _ bool, now time.Time) []string {
	s := o.(*v1.Secret)
	return []string{s.Metadata.Name, joinOrNone(secretKeys(s)), age(now, s.Metadata.CreationTimestamp)}
}

func secretKeys(s *v1.Secret) []string {
	keys := make([]string, 0, len(s.Spec.Data))
	for k := range s.Spec.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// --- routes

func routesTable(rs []client.Route) table {
	t := table{header: []string{"ENTRYPOINTS", "RULE", "SERVICE", "SERVERS"}}
	for _, r := range rs {
		rule := r.Rule
		if rule == "" {
			rule = "<" + none(r.Protocol) + ">"
		}
		switch {
		case r.Passthrough:
			rule += " (tls passthrough)"
		case r.TLS:
			rule += " (tls)"
		}
		servers := strings.Join(r.Servers, ",")
		switch {
		case r.Redirect:
			servers = "<redirect to https>"
		case servers == "" && (r.Protocol == "http" || r.Protocol == ""):
			servers = "<none: 503>"
		case servers == "":
			servers = "<none>"
		}
		t.rows = append(t.rows, []string{joinOrNone(r.EntryPoints), rule, r.Service, servers})
	}
	return t
}

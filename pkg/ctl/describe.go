package ctl

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func (a *app) describeCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "describe KIND NAME",
		Short:   "Show one object in detail: metadata, spec summary, status, conditions, replicas",
		Example: "  ctl describe svc hello\n  ctl describe node n1",
		Args:    kindArgs("describe", 1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, rest := splitKindName(args)
			if name == "" || len(rest) > 0 {
				return fmt.Errorf("describe takes KIND NAME")
			}
			info, isRoutes, err := resolveKind(kind)
			if err != nil {
				return err
			}
			if isRoutes {
				return fmt.Errorf("routes cannot be described; use ctl get routes")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			obj, err := c.Get(cmd.Context(), info.Kind, name)
			if err != nil {
				return err
			}
			var services []v1.Object
			if svc, ok := obj.(*v1.Service); info.Kind == v1.KindNode || (ok && inEgressChain(svc)) {
				l, err := c.List(cmd.Context(), v1.KindService, "")
				if err != nil {
					return err
				}
				services = l.Items
			}
			var breakers *breakerViews
			if svc, ok := obj.(*v1.Service); ok && httpProxied(svc) {
				// The breakers live in each node's proxy: ask every node (docs/proxy.md).
				views, unreachable, err := meshViews(cmd.Context(), c)
				if err != nil {
					return err
				}
				breakers = &breakerViews{views: views, unreachable: unreachable}
			}
			if err := describeWith(a.env.Out, redact(obj), services, breakers, a.env.Now()); err != nil {
				return err
			}
			return a.describeEvents(cmd.Context(), c, obj) // events.go
		},
	}
}

// describer writes "Key:  value" lines aligned, with indented sections.
type describer struct {
	tw  *tabwriter.Writer
	now time.Time
}

func (d *describer) line(indent int, key string, format string, args ...any) {
	fmt.Fprintf(d.tw, "%s%s:\t%s\n", strings.Repeat("  ", indent), key, fmt.Sprintf(format, args...))
}

// section starts an indented block; its trailing tab keeps it in the key column, so values
// stay aligned across sections.
func (d *describer) section(key string) { fmt.Fprintf(d.tw, "%s:\t\n", key) }

// table writes a nested table.
func (d *describer) table(header []string, rows [][]string) {
	_ = d.tw.Flush() // a nested table is aligned on its own
	fmt.Fprintf(d.tw, "  %s\n", strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintf(d.tw, "  %s\n", strings.Join(r, "\t"))
	}
	_ = d.tw.Flush()
}

func (d *describer) when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "<none>"
	}
	return t.UTC().Format(time.RFC3339) + " (" + humanDuration(d.now.Sub(*t)) + " ago)"
}

func describeWith(w io.Writer, obj v1.Object, services []v1.Object, breakers *breakerViews, now time.Time) error {
	var buf bytes.Buffer
	if err := describeTo(&buf, obj, services, breakers, now); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \n")
	}
	_, err := io.WriteString(w, strings.TrimSpace(strings.Join(lines, "\n"))+"\n")
	return err
}

func describeTo(w io.Writer, obj v1.Object, services []v1.Object, breakers *breakerViews, now time.Time) error {
	d := &describer{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0), now: now}
	d.meta(obj)
	switch o := obj.(type) {
	case *v1.Service:
		d.service(o)
		d.egressChain(o, services)
		d.breakers(o, breakers)
	case *v1.Node:
		d.node(o, services)
	case *v1.DNSRecord:
		d.dnsRecord(o)
	case *v1.Lease:
		d.lease(o)
	case *v1.ReplicaSet:
		d.replicaSet(o)
	case *v1.Secret:
		d.line(0, "Keys", "%s", joinOrNone(secretKeys(o)))
		d.line(0, "Values", "%s", "not shown")
	case *v1.Config, *v1.Job, *v1.CronJob:
		d.jobKinds(o) // jobprinters.go
	}
	if c, ok := obj.(v1.Conditioned); ok {
		d.conditions(*c.GetConditions())
	}
	return d.tw.Flush()
}

func (d *describer) meta(o v1.Object) {
	m := o.GetMetadata()
	d.line(0, "Name", "%s", m.Name)
	d.line(0, "Kind", "%s", o.GetTypeMeta().Kind)
	d.line(0, "Labels", "%s", labelString(m.Labels))
	d.line(0, "Annotations", "%s", labelString(m.Annotations))
	d.line(0, "UID", "%s", none(m.UID))
	d.line(0, "Generation", "%d", m.Generation)
	d.line(0, "Resource Version", "%s", none(m.ResourceVersion))
	d.line(0, "Created", "%s", d.when(m.CreationTimestamp))
	if m.DeletionTimestamp != nil {
		d.line(0, "Deleting Since", "%s", d.when(m.DeletionTimestamp))
	}
	if len(m.Finalizers) > 0 {
		d.line(0, "Finalizers", "%s", strings.Join(m.Finalizers, ", "))
	}
	if len(m.OwnerReferences) > 0 {
		var os []string
		for _, r := range m.OwnerReferences {
			os = append(os, r.Kind+"/"+r.Name)
		}
		d.line(0, "Owners", "%s", strings.Join(os, ", "))
	}
}

// replicaVirtualIPs shows each replica index's mesh address with the name it answers to. An
// index scaling down removed keeps its address until the Service is deleted (docs/mesh.md,
// "Virtual IPs").
func (d *describer) replicaVirtualIPs(s *v1.Service) {
	if len(s.Status.ReplicaVirtualIPs) == 0 {
		return
	}
	d.section("Replica IPs")
	desired := s.DesiredReplicas()
	rows := make([][]string, 0, len(s.Status.ReplicaVirtualIPs))
	for _, r := range s.Status.ReplicaVirtualIPs {
		note := ""
		if r.Index >= desired {
			note = "scaled away: kept until the Service is deleted"
		}
		rows = append(rows, []string{strconv.Itoa(int(r.Index)), fmt.Sprintf("%s-%d.%s", s.Metadata.Name, r.Index, s.Metadata.Name), r.IP, note})
	}
	d.table([]string{"INDEX", "NAME", "VIRTUAL-IP", "NOTE"}, rows)
}

func (d *describer) service(s *v1.Service) {
	sp := &s.Spec
	d.line(0, "Image", "%s", sp.Image)
	if len(sp.Command) > 0 {
		d.line(0, "Command", "%s", strings.Join(sp.Command, " "))
	}
	if len(sp.Args) > 0 {
		d.line(0, "Args", "%s", strings.Join(sp.Args, " "))
	}
	d.line(0, "Replicas", "%d desired, %d ready, %d updated, %d total", s.DesiredReplicas(), s.Status.ReadyReplicas, s.Status.UpdatedReplicas, s.Status.Replicas)
	d.line(0, "Status", "%s (observed generation %d)", serviceStatus(s), s.Status.ObservedGeneration)
	d.line(0, "Ports", "%s", servicePorts(s))
	d.line(0, "Virtual IP", "%s", none(s.Status.VirtualIP))
	if len(sp.Env) > 0 {
		d.section("Environment")
		for _, e := range sp.Env {
			if e.SecretRef != nil {
				roll := "rolls on change"
				if !e.SecretRef.Rolls() {
					roll = "restart: never"
				}
				d.line(1, e.Name, "from secret %s, key %s (%s)", e.SecretRef.Name, e.SecretRef.Key, roll)
			} else {
				d.line(1, e.Name, "%s", e.Value)
			}
		}
	}
	if hc := sp.HealthCheck; hc != nil {
		d.line(0, "Health Check", "%s", healthCheckString(hc))
	}
	if r := sp.Routes; r != nil {
		d.section("Routes")
		for _, h := range r.HTTP {
			v := "http " + h.Host + h.PathPrefix
			if h.Port != "" {
				v += " -> port " + string(h.Port)
			}
			if h.TLS != nil {
				v += " (tls)"
			}
			d.line(1, strings.Join(h.EntryPoints, ","), "%s", v)
		}
		for _, t := range r.TCP {
			v := "tcp " + t.HostSNI
			if t.Port != "" {
				v += " -> port " + string(t.Port)
			}
			if t.Passthrough {
				v += " (passthrough)"
			}
			d.line(1, t.EntryPoint, "%s", v)
		}
		for _, u := range r.UDP {
			d.line(1, u.EntryPoint, "udp -> port %s", none(string(u.Port)))
		}
	}
	if p := sp.Placement; p != nil {
		v := "nodes " + labelString(p.NodeSelector)
		if p.MaxPerNode > 0 {
			v += fmt.Sprintf(", at most %d per node", p.MaxPerNode)
		}
		d.line(0, "Placement", "%s", v)
	}
	if len(sp.Networks) > 0 {
		d.line(0, "Networks", "%s", strings.Join(sp.Networks, ", "))
	}
	if len(sp.Volumes) > 0 {
		var vs []string
		for _, v := range sp.Volumes {
			s := v.Source + ":" + v.Target
			if v.ReadOnly {
				s += ":ro"
			}
			vs = append(vs, s)
		}
		d.line(0, "Volumes", "%s", strings.Join(vs, ", "))
	}
	if uses := sp.HostAccessUses(); len(uses) > 0 || sp.HostAccess {
		v := "opted in (spec.hostAccess)"
		if !sp.HostAccess {
			v = "NOT opted in: nodes refuse its containers (set spec.hostAccess: true)"
		}
		if len(uses) > 0 {
			v += ", uses " + strings.Join(uses, ", ")
		}
		if len(sp.CapAdd) > 0 {
			v += ", capAdd " + strings.Join(sp.CapAdd, " ")
		}
		if len(sp.CapDrop) > 0 {
			v += ", capDrop " + strings.Join(sp.CapDrop, " ")
		}
		d.line(0, "Host access", "%s", v)
	} else if len(sp.CapDrop) > 0 {
		d.line(0, "Capabilities", "capDrop %s", strings.Join(sp.CapDrop, " "))
	}
	if r := sp.Resources; r != nil {
		d.line(0, "Resources", "cpus %s, memory %dMiB", none(r.CPUs), r.MemoryMB)
	}
	if u := sp.Update; u != nil {
		d.line(0, "Update", "%s, max surge %s, max unavailable %s", none(string(u.Order)), int32Ptr(u.MaxSurge), int32Ptr(u.MaxUnavailable))
	}
	d.replicaVirtualIPs(s)
	d.section("Replica Statuses")
	if len(s.Status.ReplicaStatuses) == 0 {
		d.tw.Write([]byte("  <none>\n"))
	} else {
		var rows [][]string
		for _, r := range s.Status.ReplicaStatuses {
			rows = append(rows, []string{strconv.Itoa(int(r.Index)), none(r.Node), none(string(r.State)), none(string(r.Health)), none(r.Address), none(shortID(r.ContainerID)), r.Message})
		}
		d.table([]string{"INDEX", "NODE", "STATE", "HEALTH", "ADDRESS", "CONTAINER", "MESSAGE"}, rows)
	}
}

func int32Ptr(p *int32) string {
	if p == nil {
		return "<default>"
	}
	return strconv.Itoa(int(*p))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func healthCheckString(hc *v1.HealthCheck) string {
	var s string
	switch {
	case hc.HTTP != nil:
		s = "http GET " + hc.HTTP.Path
		if hc.HTTP.Port != "" {
			s += " on port " + string(hc.HTTP.Port)
		}
	case hc.TCP != nil:
		s = "tcp connect"
		if hc.TCP.Port != "" {
			s += " on port " + string(hc.TCP.Port)
		}
	case hc.Exec != nil:
		s = "exec " + strings.Join(hc.Exec.Command, " ")
	default:
		s = "none"
	}
	if hc.Interval != nil {
		s += ", every " + hc.Interval.String()
	}
	if hc.Timeout != nil {
		s += ", timeout " + hc.Timeout.String()
	}
	if hc.Retries != nil {
		s += fmt.Sprintf(", %d retries", *hc.Retries)
	}
	if hc.StartPeriod != nil && hc.StartPeriod.Duration > 0 {
		s += ", start period " + hc.StartPeriod.String()
	}
	return s
}

func (d *describer) node(n *v1.Node, services []v1.Object) {
	d.line(0, "Status", "%s", nodeStatus(n))
	d.line(0, "Node Labels", "%s", labelString(n.Spec.Labels))
	d.line(0, "Unschedulable", "%t", n.Spec.Unschedulable)
	d.line(0, "Drain", "%t", n.Spec.Drain)
	a := n.Status.Addresses
	d.section("Addresses")
	d.line(1, "Advertise", "%s", none(a.Advertise))
	d.line(1, "API", "%s", none(a.API))
	d.line(1, "Raft", "%s", none(a.Raft))
	d.line(1, "Gossip", "%s", none(a.Gossip))
	d.line(0, "Raft Role", "%s", none(string(n.Status.RaftRole)))
	d.line(0, "Gossip State", "%s", none(n.Status.GossipState))
	d.line(0, "Agent Version", "%s", none(n.Status.AgentVersion))
	d.line(0, "Last Seen", "%s", d.when(n.Status.LastSeen))
	var rows [][]string
	for _, o := range services {
		s := o.(*v1.Service)
		for _, r := range s.Status.ReplicaStatuses {
			if r.Node == n.Metadata.Name {
				rows = append(rows, []string{s.Metadata.Name, strconv.Itoa(int(r.Index)), none(string(r.State)), none(string(r.Health)), none(r.Address)})
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	d.section("Replicas")
	if len(rows) == 0 {
		d.tw.Write([]byte("  <none>\n"))
	} else {
		d.table([]string{"SERVICE", "INDEX", "STATE", "HEALTH", "ADDRESS"}, rows)
	}
}

func (d *describer) dnsRecord(r *v1.DNSRecord) {
	sp := &r.Spec
	d.line(0, "Zone", "%s", sp.Zone)
	d.line(0, "Record", "%s %s", sp.Type, sp.Name)
	d.line(0, "TTL", "%d", sp.TTL)
	d.line(0, "Proxied", "%t", sp.Proxied)
	switch t := sp.Target; {
	case sp.Content != "":
		d.line(0, "Content", "%s", sp.Content)
	case t != nil && t.Lease != "":
		d.line(0, "Target", "the holder of lease %s", t.Lease)
	case t != nil:
		d.line(0, "Target", "every Ready node with %s", labelString(t.NodeSelector))
	}
	var recs []string
	for _, p := range r.Status.Records {
		recs = append(recs, p.Content+" (id "+p.ID+")")
	}
	d.line(0, "Records", "%s", none(strings.Join(recs, ", ")))
	d.line(0, "Last Sync", "%s", d.when(r.Status.LastSyncTime))
}

func (d *describer) lease(l *v1.Lease) {
	sp := &l.Spec
	d.line(0, "Holder", "%s", none(sp.HolderIdentity))
	d.line(0, "Duration", "%ds", sp.LeaseDurationSeconds)
	d.line(0, "Acquired", "%s", d.when(sp.AcquireTime))
	d.line(0, "Renewed", "%s", d.when(sp.RenewTime))
	if sp.RenewTime != nil && sp.LeaseDurationSeconds > 0 {
		exp := sp.RenewTime.Add(time.Duration(sp.LeaseDurationSeconds) * time.Second)
		if left := exp.Sub(d.now); left > 0 {
			d.line(0, "Expires", "in %s", humanDuration(left))
		} else {
			d.line(0, "Expires", "expired %s ago", humanDuration(-left))
		}
	}
	d.line(0, "Transitions", "%d", sp.LeaseTransitions)
}

func (d *describer) replicaSet(r *v1.ReplicaSet) {
	sp := &r.Spec
	d.line(0, "Engine", "%s", sp.Engine)
	d.line(0, "Member Services", "%s", joinOrNone(sp.Members))
	if m := sp.Mongo; m != nil {
		d.line(0, "Replica Set Name", "%s", m.ReplSetName)
		if len(m.Priorities) > 0 {
			var ps []string
			for k, v := range m.Priorities {
				ps = append(ps, fmt.Sprintf("%s=%g", k, v))
			}
			sort.Strings(ps)
			d.line(0, "Priorities", "%s", strings.Join(ps, ", "))
		}
	}
	if rd := sp.Redis; rd != nil {
		d.line(0, "Master Name", "%s", rd.MasterName)
		d.line(0, "Sentinel Service", "%s", rd.Sentinel)
		if rd.Quorum > 0 {
			d.line(0, "Quorum", "%d", rd.Quorum)
		}
		d.line(0, "Down After", "%s", rd.EffectiveDownAfter())
		d.line(0, "Failover Timeout", "%s", rd.EffectiveFailoverTimeout())
		if rd.MinReplicasToWrite > 0 {
			d.line(0, "Min Replicas To Write", "%d (max lag %s)", rd.MinReplicasToWrite, rd.EffectiveMinReplicasMaxLag())
		}
		if rd.PasswordSecret != nil {
			d.line(0, "Password Secret", "%s/%s", rd.PasswordSecret.Name, rd.PasswordSecret.Key)
		}
	}
	d.line(0, "Primary", "%s", none(r.Status.Primary))
	if c := v1.FindCondition(r.Status.Conditions, v1.ReplicaSetPrimaryAgreed); c != nil {
		d.line(0, "Primary Agreed", "%s (%s)", c.Status, c.Reason)
	}
	d.section("Members")
	if len(r.Status.Members) == 0 {
		d.tw.Write([]byte("  <none>\n"))
		return
	}
	var rows [][]string
	for _, m := range r.Status.Members {
		rows = append(rows, []string{m.Name, none(m.Role), none(m.Health), strconv.FormatInt(m.Offset, 10)})
	}
	d.table([]string{"NAME", "ROLE", "HEALTH", "OFFSET"}, rows)
}

func (d *describer) conditions(conds []v1.Condition) {
	d.section("Conditions")
	if len(conds) == 0 {
		d.tw.Write([]byte("  <none>\n"))
		return
	}
	var rows [][]string
	for _, c := range conds {
		t := c.LastTransitionTime
		rows = append(rows, []string{string(c.Type), string(c.Status), none(string(c.Reason)), humanDuration(d.now.Sub(t)) + " ago", c.Message})
	}
	d.table([]string{"TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"}, rows)
}

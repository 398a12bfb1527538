package ctl

import (
	"fmt"
	"sort"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// inEgressChain reports whether describe shows an egress chain for s (it shares a namespace
// or provides an egress), for which it lists the Services.
func inEgressChain(s *v1.Service) bool { return s.Spec.Network != nil || s.Spec.EgressCheck != nil }

// egressChain shows the gateway → dependents chain s is part of (docs/egress.md): the
// gateway's egress check and its EgressHealthy condition, and each Service sharing its
// namespace with its Ready condition.
func (d *describer) egressChain(s *v1.Service, services []v1.Object) {
	if !inEgressChain(s) {
		return
	}
	gwName := s.Metadata.Name
	if o, ok := s.Spec.NetworkOwner(); ok {
		gwName = o
	}
	byName := map[string]*v1.Service{}
	var deps []string
	for _, o := range services {
		svc, ok := o.(*v1.Service)
		if !ok {
			continue
		}
		byName[svc.Metadata.Name] = svc
		if owner, ok := svc.Spec.NetworkOwner(); ok && owner == gwName {
			deps = append(deps, svc.Metadata.Name)
		}
	}
	if s.Metadata.Name == gwName {
		byName[gwName] = s
	}
	sort.Strings(deps)
	d.section("Egress Chain")
	gw := byName[gwName]
	switch {
	case gw == nil:
		d.line(1, "Gateway", "%s (not found)", gwName)
	default:
		v := gwName
		if c := gw.Spec.EgressCheck; c != nil {
			dc := c.Defaults()
			v += fmt.Sprintf(": check %s via %s, expect %q, min %d bytes, every %s, %d failures", c.URL, dc.Via, c.Expect, c.MinBytes, dc.Interval.Duration, *dc.FailureThreshold)
		}
		d.line(1, "Gateway", "%s", v)
		if c := v1.FindCondition(gw.Status.Conditions, v1.ServiceEgressHealthy); c != nil {
			d.line(1, "EgressHealthy", "%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	if len(deps) == 0 {
		d.line(1, "Dependents", "%s", "<none>")
		return
	}
	for _, name := range deps {
		st := "Ready unknown"
		if c := v1.FindCondition(byName[name].Status.Conditions, v1.ServiceReady); c != nil {
			st = strings.TrimSpace(fmt.Sprintf("Ready %s %s: %s", c.Status, c.Reason, c.Message))
		}
		d.line(1, "Dependent "+name, "%s", st)
	}
}

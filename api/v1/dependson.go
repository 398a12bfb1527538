package v1

import (
	"net"
	"sort"
	"strings"
)

// Dependency is one entry of spec.dependsOn (Compose's depends_on with a condition).
type Dependency struct {
	// Service names the Service depended on. Required.
	Service string `json:"service"`
	// Condition is "started" (the default, also ""): at least one replica of it runs
	// somewhere in the cluster; or "healthy": at least one is ready (running and passing its
	// health check; a Service without a health check is ready when running). A Service with
	// upstreams counts as both.
	Condition DependencyCondition `json:"condition,omitempty"`
}

// DependencyCondition is dependsOn[].condition.
type DependencyCondition string

// Dependency conditions.
const (
	DependencyStarted DependencyCondition = "started"
	DependencyHealthy DependencyCondition = "healthy"
)

// ReasonWaitingForDependency: the scheduler holds a Service's replicas back until its
// dependsOn conditions hold.
const ReasonWaitingForDependency ConditionReason = "WaitingForDependency"

func isIP(s string) bool { return net.ParseIP(s) != nil }

// validateModeAndDeps checks spec.mode, the fields global mode excludes, and the shape of
// spec.dependsOn (cycles are a cross-object matter: DependencyCycle).
func validateModeAndDeps(sp path, name string, s *ServiceSpec) ErrorList {
	var errs ErrorList
	switch s.Mode {
	case "", ModeReplicated:
	case ModeGlobal:
		if s.Replicas != nil {
			errs.add(sp.child("replicas").String(), "must be empty with mode global (one replica runs on every matching node)")
		}
		if s.Placement != nil && s.Placement.MaxPerNode > 1 {
			errs.add(sp.child("placement").child("maxPerNode").String(), "must be 0 or 1 with mode global, got %d", s.Placement.MaxPerNode)
		}
		if s.Update != nil && s.Update.Order == StartFirst {
			errs.add(sp.child("update").child("order").String(), "must be stop-first with mode global: a node runs one replica, so the new one starts where the old one stopped")
		}
		if s.IsUpstreamService() {
			errs.add(sp.child("mode").String(), "must be replicated (or empty) for a Service with upstreams: no replica runs")
		}
	default:
		errs.add(sp.child("mode").String(), "must be %q or %q, got %q", ModeReplicated, ModeGlobal, s.Mode)
	}
	seen := map[string]bool{}
	for i, d := range s.DependsOn {
		dp := sp.child("dependsOn").index(i)
		switch {
		case !IsDNSLabel(d.Service):
			errs.add(dp.child("service").String(), "must name a Service, got %q", d.Service)
		case d.Service == name:
			errs.add(dp.child("service").String(), "a Service cannot depend on itself")
		case seen[d.Service]:
			errs.add(dp.child("service").String(), "duplicate dependency %q", d.Service)
		}
		seen[d.Service] = true
		switch d.Condition {
		case "", DependencyStarted, DependencyHealthy:
		default:
			errs.add(dp.child("condition").String(), "must be %q or %q, got %q", DependencyStarted, DependencyHealthy, d.Condition)
		}
	}
	return errs
}

// DependencyCycle looks for a dependsOn cycle through svc, given the other Services (stored
// ones and the rest of an apply; an entry named like svc is ignored: svc replaces it). It
// returns the error at spec.dependsOn naming the path ("cycle web -> api -> web"), or nil.
// The API server cannot see the rest of an apply, so `ctl apply` runs it over the whole set
// first (DependencyCycles), and the server runs it against what is stored.
func DependencyCycle(svc *Service, others []*Service) *FieldError {
	deps := map[string][]string{}
	for _, o := range others {
		if o.Metadata.Name == svc.Metadata.Name {
			continue
		}
		deps[o.Metadata.Name] = depNames(&o.Spec)
	}
	deps[svc.Metadata.Name] = depNames(&svc.Spec)
	if c := findCycle(deps, svc.Metadata.Name); c != nil {
		return &FieldError{Field: "spec.dependsOn", Message: "cycle " + strings.Join(c, " -> ")}
	}
	return nil
}

// DependencyCycles checks a set of Services together (one apply), reporting each cycle once,
// at the first Service of it by name.
func DependencyCycles(svcs []*Service) map[string]*FieldError {
	deps := map[string][]string{}
	for _, s := range svcs {
		deps[s.Metadata.Name] = depNames(&s.Spec)
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]*FieldError{}
	reported := map[string]bool{}
	for _, n := range names {
		if reported[n] {
			continue
		}
		c := findCycle(deps, n)
		if c == nil {
			continue
		}
		for _, m := range c {
			reported[m] = true
		}
		out[n] = &FieldError{Field: "spec.dependsOn", Message: "cycle " + strings.Join(c, " -> ")}
	}
	return out
}

func depNames(s *ServiceSpec) []string {
	out := make([]string, 0, len(s.DependsOn))
	for _, d := range s.DependsOn {
		out = append(out, d.Service)
	}
	return out
}

// findCycle returns a path from start back to start (start, ..., start), or nil. Depth first,
// dependencies in the order written, so the path is deterministic.
func findCycle(deps map[string][]string, start string) []string {
	visited := map[string]bool{}
	var stack []string
	var walk func(n string) []string
	walk = func(n string) []string {
		stack = append(stack, n)
		defer func() { stack = stack[:len(stack)-1] }()
		for _, d := range deps[n] {
			if d == start {
				return append(append([]string(nil), stack...), start)
			}
			if visited[d] {
				continue
			}
			visited[d] = true
			if c := walk(d); c != nil {
				return c
			}
		}
		return nil
	}
	return walk(start)
}

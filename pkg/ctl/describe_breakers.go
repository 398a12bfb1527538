package ctl

import (
	"fmt"
	"strings"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

// breakerViews are every node's mesh, as `ctl describe svc` fetched them for a Service whose
// ports the mesh proxies per request.
type breakerViews struct {
	views       []*client.MeshView
	unreachable []string
}

// httpProxied reports whether the mesh proxies some port of s per request (appProtocol http, or
// an upstream Service): only those have circuit breakers.
func httpProxied(s *v1.Service) bool {
	for _, p := range s.Spec.Ports {
		if s.Spec.HTTPProxied(p) {
			return true
		}
	}
	return false
}

// breakers shows the circuit breaker of every upstream of s's HTTP listeners as each node's
// proxy holds it (breakers are per node: docs/proxy.md), and names the nodes not asked.
func (d *describer) breakers(s *v1.Service, b *breakerViews) {
	if b == nil {
		return
	}
	d.section("Breakers (each node's proxy)")
	var rows [][]string
	for _, v := range b.views {
		for _, l := range v.Listeners {
			if l.Protocol != "http" || !listenerOf(l.Service, s.Metadata.Name) {
				continue
			}
			for _, ep := range l.Endpoints {
				health := "healthy"
				if !ep.Healthy {
					health = "unavailable"
				}
				rows = append(rows, []string{v.Node, fmt.Sprintf("%s:%d", l.VIP, l.Port), ep.Address, health, none(ep.Breaker)})
			}
		}
	}
	if len(rows) == 0 {
		_, _ = d.tw.Write([]byte("  <none>\n"))
	} else {
		d.table([]string{"NODE", "LISTENER", "UPSTREAM", "STATE", "BREAKER"}, rows)
	}
	for _, u := range b.unreachable {
		d.line(1, "Not asked", "%s", u)
	}
}

// listenerOf reports whether a mesh listener's service label ("<svc>" for the Service's
// address, "<svc>-<i>" for replica i's) belongs to the Service named svc.
func listenerOf(label, svc string) bool {
	if label == svc {
		return true
	}
	idx, ok := strings.CutPrefix(label, svc+"-")
	if !ok || idx == "" {
		return false
	}
	for _, r := range idx {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

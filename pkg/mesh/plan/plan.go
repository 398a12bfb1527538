// Package plan turns what a node knows (Services with their virtual IPs, the observed replicas,
// which nodes are alive) into what its mesh serves: the proxy's listeners with their endpoints,
// and the addresses to keep on the loopback interface. It is pure, so every rule is a row of a
// table test; the agent calls it on every change (pkg/agent/mesh.go).
package plan

import (
	"net/netip"
	"slices"
	"strconv"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/mesh/httpproxy"
	"github.com/constellation-sh/constellation/pkg/mesh/ipam"
	"github.com/constellation-sh/constellation/pkg/mesh/proxy"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// Input is one node's view.
type Input struct {
	// Node is this node's name: its replicas are the local endpoints.
	Node string
	// Services are every Service of the store (the local replica: the mesh keeps forwarding
	// without a quorum).
	Services []*v1.Service
	// Replicas are the observed replicas (gossip), every node's.
	Replicas []observed.Replica
	// Alive reports whether a node is alive in gossip; a dead node's replicas get no new
	// connections. Nil: every node is.
	Alive func(node string) bool
	// Prefix is the mesh prefix: virtual IPs outside it are not served (an address allocated
	// from an old --mesh.cidr is still served if it is inside Prefix of the node).
	Prefix netip.Prefix
	// ReplicaSets whose status.virtualIP serves <rs>-primary (replicasets.go). Nil: none.
	ReplicaSets []*v1.ReplicaSet
}

// Output is what the node's mesh serves.
type Output struct {
	// Table is the proxy's listeners, sorted by key.
	Table proxy.Table
	// HTTP is the per-request proxy's listeners (ports with appProtocol http, upstream
	// Services) on the Services' virtual IPs, sorted by key; those ports are not in Table.
	HTTP httpproxy.Table
	// Addresses are the virtual IPs to keep on lo, sorted.
	Addresses []netip.Addr
}

// Compute builds the node's mesh. For every Service with a virtual IP and every declared port
// there is one listener on the Service's address, whose endpoints are every replica that
// publishes the port, healthy when it is Ready and its node alive, local when it runs here;
// and one listener per replica index below spec.replicas on the replica's own address, with
// that replica alone. Endpoints are each replica's node address and published port (what
// observed.Replica.Ports says), so a local replica is reached the same way as a remote one.
func Compute(in Input) Output {
	alive := in.Alive
	if alive == nil {
		alive = func(string) bool { return true }
	}
	byService := map[string][]observed.Replica{}
	for _, r := range in.Replicas {
		byService[r.Service] = append(byService[r.Service], r)
	}
	var out Output
	byName := make(map[string]*v1.Service, len(in.Services))
	for _, s := range in.Services {
		byName[s.Metadata.Name] = s
	}
	seen := map[netip.Addr]bool{}
	addAddr := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			out.Addresses = append(out.Addresses, a)
		}
	}
	for _, svc := range in.Services {
		if svc.Metadata.DeletionTimestamp != nil {
			continue
		}
		addrs, _ := ipam.FromStatus(&svc.Status)
		replicas := int32(1)
		if svc.Spec.Replicas != nil {
			replicas = *svc.Spec.Replicas
		}
		rs := byService[svc.Metadata.Name]
		for _, p := range svc.Spec.Ports {
			proto := proxy.TCP
			if p.Protocol == v1.ProtocolUDP {
				proto = proxy.UDP
			}
			key := observed.PortKey(p.ContainerPort, p.Protocol)
			endpoint := func(r observed.Replica) (proxy.Endpoint, bool) {
				hostPort := r.Ports[key]
				if hostPort == "" {
					return proxy.Endpoint{}, false
				}
				return proxy.Endpoint{Node: r.Node, Address: hostPort, Healthy: r.Ready() && alive(r.Node), Local: r.Node == in.Node}, true
			}
			if a := addrs.Service; a.IsValid() && in.Prefix.Contains(a) && svc.Spec.HTTPProxied(p) {
				out.HTTP = append(out.HTTP, httpEntry(in, byName, svc, a, p, rs, alive))
				addAddr(a)
			} else if a.IsValid() && in.Prefix.Contains(a) {
				e := proxy.Entry{Key: proxy.Key{Protocol: proto, VIP: a, Port: uint16(p.ContainerPort)}, Service: svc.Metadata.Name}
				for _, r := range rs {
					if ep, ok := endpoint(r); ok {
						e.Endpoints = append(e.Endpoints, ep)
					}
				}
				sortEndpoints(e.Endpoints)
				out.Table = append(out.Table, e)
				addAddr(a)
			}
			for idx, a := range addrs.Replicas {
				if idx >= replicas || !a.IsValid() || !in.Prefix.Contains(a) {
					continue
				}
				e := proxy.Entry{Key: proxy.Key{Protocol: proto, VIP: a, Port: uint16(p.ContainerPort)},
					Service: svc.Metadata.Name + "-" + strconv.Itoa(int(idx))}
				for _, r := range rs {
					if r.Index != idx {
						continue
					}
					if ep, ok := endpoint(r); ok {
						e.Endpoints = append(e.Endpoints, ep)
					}
				}
				sortEndpoints(e.Endpoints)
				out.Table = append(out.Table, e)
				addAddr(a)
			}
		}
	}
	out.Table = append(out.Table, replicaSetEntries(in, byService, alive, addAddr)...)
	slices.SortFunc(out.Table, func(x, y proxy.Entry) int {
		if c := x.VIP.Compare(y.VIP); c != 0 {
			return c
		}
		if x.Port != y.Port {
			return int(x.Port) - int(y.Port)
		}
		if x.Protocol < y.Protocol {
			return -1
		} else if x.Protocol > y.Protocol {
			return 1
		}
		return 0
	})
	slices.SortFunc(out.HTTP, func(x, y httpproxy.Entry) int {
		if c := x.VIP.Compare(y.VIP); c != 0 {
			return c
		}
		return int(x.Port) - int(y.Port)
	})
	slices.SortFunc(out.Addresses, func(x, y netip.Addr) int { return x.Compare(y) })
	return out
}

func sortEndpoints(eps []proxy.Endpoint) {
	slices.SortFunc(eps, func(x, y proxy.Endpoint) int {
		if x.Node != y.Node {
			if x.Node < y.Node {
				return -1
			}
			return 1
		}
		if x.Address < y.Address {
			return -1
		} else if x.Address > y.Address {
			return 1
		}
		return 0
	})
}

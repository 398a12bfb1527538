// Package dns is the mesh's name service: a small DNS server that every agent runs on the gateway
// address of each Constellation bridge network, the resolver of every container the agent creates.
//
// It answers the mesh names from a Table (pure, swapped atomically with Server.SetTable):
//
//	<svc>, <svc>.constellation.internal                      the Service's virtual IP
//	<svc>-<i>.<svc>, <svc>-<i>.<svc>.constellation.internal  replica i's virtual IP
//	<rs>-primary, <rs>-primary.constellation.internal        the ReplicaSet primary's virtual IP
//
// and forwards every other name to the host's resolvers (read from resolv.conf), so that other
// names resolve as they do without the mesh. The bare forms (without the domain) are answered
// directly, not only through the search domain, because resolvers differ in how they use search
// lists (musl never applies them to a name with at least ndots dots, Docker writes ndots:0), and
// the contract says the name always means the mesh address.
//
// Queries from containers are untrusted input: malformed packets are dropped or answered FORMERR
// and counted, forwarding runs with bounded concurrency and a timeout per upstream.
//
// It imports miekg/dns, Prometheus and the standard library only; it must not import the store,
// api/v1, controllers or the agent: the agent builds a Table from Services and ReplicaSets and
// hands it over.
package dns

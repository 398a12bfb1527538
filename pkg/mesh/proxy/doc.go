// Package proxy is the mesh's data plane: for every (virtual IP, port, protocol) it listens
// in-process and forwards each TCP connection or UDP session to one healthy endpoint of the
// Service behind it (a local container directly, a replica on another node at its node address
// and published port).
//
// It owns:
//   - Order, the pure endpoint choice: healthy local replicas first, then the other healthy ones
//     by least open connections, ties broken round robin; an unhealthy endpoint is never chosen.
//   - Proxy, the listeners and forwarders, driven level-triggered by Sync(Table): listeners
//     appear and disappear with the table's entries, endpoint lists are swapped atomically
//     without touching open connections.
//   - the per Service and port metrics (constellation_mesh_*).
//
// The caller decides what the table holds (virtual IPs, endpoints, health from gossip) and puts
// the virtual IPs on a local interface; this package knows nothing of the store, gossip, Docker
// or DNS. It imports only the standard library and Prometheus' client; it must not import
// api/v1, controllers or any other package of ours, so that it stays a leaf that the agent, tests
// and hack/bench-mesh can all use.
package proxy

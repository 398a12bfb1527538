// Package gossip carries observed state between agents over hashicorp/memberlist: who is in the
// cluster and alive (SWIM failure detection with Lifeguard, tuned for a small LAN cluster), each
// node's metadata (name, labels, addresses, agent version), and what each node's containers are
// doing (observed.Replica). It keeps an observed.Set up to date that the rest of the agent reads
// (the Traefik provider, the scheduler and the status controller) without going through the store.
//
// Every agent is authoritative for its own replicas only: SetLocalReplicas diffs the new list
// against the last one and broadcasts each changed replica as one small versioned message; a
// push/pull exchange carries everything a node knows so that a node that joins or returns
// converges in one round trip. Messages from peers are untrusted input: a malformed, oversized
// or unknown-version message is dropped and counted, never panics.
//
// It imports api/v1 and pkg/observed only (plus memberlist and Prometheus); it must not import
// the store, controllers or the agent.
package gossip

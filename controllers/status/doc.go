// Package status is the status controller: one active in the cluster (the agent runs it while it
// holds the controller Lease), it folds the observed view that gossip keeps into the store —
// Node status (Ready from gossip liveness, addresses, gossip state, agent version, last seen,
// raft role) and Service status (replica counts, per-replica statuses, Ready and Degraded).
//
// Observed state changes often (a flapping container, a rolling update); the store is a raft
// log. So the controller writes only when the folded status differs from the stored one, and
// at most once per Debounce for one object; the next change is picked up after that.
//
// It owns only its fields: Service Progressing, assignments and revisions belong to the
// scheduler and are written back as read, with compare-and-swap on resourceVersion.
//
// It imports api/v1, pkg/observed, pkg/store and controllers/runtime; it does not import gossip.
package status

// Package replicaset is the ReplicaSet controller. It runs under the `controller` Lease (with
// the scheduler, the status and mesh controllers), watches ReplicaSets, their member Services,
// their sentinel Service and Nodes, and for each ReplicaSet: owns the sentinel Service (redis:
// one replica per node, maxPerNode 1), builds the members (replicaset.Member: the per-replica
// mesh name as Host, the replica's virtual IP and port as Dial, Ready from replicaStatuses),
// reads the auth Secret, runs one step of the engine chosen by spec.engine (a map of
// constructors in Config, so the agent wires redis and mongo) and writes status (primary,
// members, conditions) with compare-and-swap. Offset-only changes are written at most every
// Config.OffsetInterval.
//
// It imports api/v1, pkg/store, pkg/replicaset and controllers/runtime; never an engine package
// (the agent passes the constructors in).
package replicaset

// Package mesh is the mesh controller: it gives every Service a stable virtual IP and one per
// replica index (status.virtualIP, status.replicaVirtualIPs), from --mesh.cidr, with the pure
// allocator of pkg/mesh/ipam. It is the only writer of those fields; the agent runs it inside
// the leader context of the `controller` Lease, with the scheduler and the status controller,
// so that two allocations never race.
//
// Reconcile reads a Service from an informer cache; when it holds what it needs (the common
// case) it only checks that no other Service holds one of its addresses (a cache index) and
// reports addresses outside the CIDR. When something must be allocated it takes a mutex,
// reads the Service with a linearizable Get, builds the table of every other Service's
// addresses from a linearizable List (reused for up to Config.SnapshotMaxAge, with its own
// writes laid over it, so a burst of creations costs one List a second, not one each), and
// writes status with compare-and-swap. A conflict is a short requeue.
//
// Safety net: should two Services ever hold one address (a status written by hand, a restore,
// a write of the previous Lease holder landing after the new one listed), the older keeps it
// and the younger is renumbered on its next reconcile, with a warning.
//
// It imports api/v1, pkg/store, pkg/mesh/ipam and controllers/runtime.
package mesh

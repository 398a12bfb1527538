// Package ipam allocates the mesh's virtual IPs: one per Service and one per replica index, from
// the agents' --mesh.cidr. It is pure: given the range and every address every Service holds,
// Table.Allocate answers what one Service should hold, and the caller (controllers/mesh, the
// only writer, under the controller Lease) records that answer in the Service's status.
//
// The rules (docs/mesh.md, "Virtual IPs"):
//   - never the network address, the broadcast address, or the first host address (.1 of the
//     CIDR, reserved for the mesh itself);
//   - an address a Service holds is kept while the Service exists, also when --mesh.cidr
//     changed and it is now outside (reported in Result.Outside, never renumbered silently);
//     replica indices that scaling down removed keep theirs too;
//   - new addresses are found by probing from a hash of the Service's uid (and the replica
//     index), so the same input gives the same output, a Service whose status lost its address
//     gets the same one back while it is free, and a freed address is not the next one handed
//     out (as lowest-free would do), which keeps stale client caches off a new Service;
//   - two Services holding one address (a status written by hand, a restore) is resolved for
//     the older one (creation time, then name): the younger is given a new address, reported
//     in Result.Dropped;
//   - exhaustion is ErrExhausted, naming the CIDR and how many addresses are in use.
//
// It imports api/v1 (status conversion) and the standard library only.
package ipam

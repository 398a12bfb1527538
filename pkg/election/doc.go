// Package election elects one holder of a named Lease object in the store and fences it: a holder
// that cannot renew stops acting before any other candidate can take the lease over.
//
// The guarantee rests on the store's linearizable compare-and-swap and on one assumption about
// clocks: every node's clock advances at roughly the same rate (the difference is bounded by
// Config.DriftFactor, 20% by default). Wall-clock offsets between nodes do not matter, because
// no node compares its clock with a time another node wrote:
//
//   - the holder measures its term from the moment it *sent* the renewal that succeeded, and
//     stops acting at sent + Duration×(1-DriftFactor);
//   - a candidate measures expiry from the moment it first *observed* the current version of the
//     lease (which is after that renewal committed, hence after it was sent), and takes over only
//     when that same version is still there Duration later, with a compare-and-swap on its
//     resourceVersion.
//
// So the holder's term ends before any candidate's timer can fire, as long as the holder's clock
// does not run more than DriftFactor slower than the candidate's. A holder cut off from the store
// may still believe it leads for up to Duration×(1-DriftFactor) after its last successful renewal
// was sent; controllers must check IsLeader (or use the leader context) before each outside write.
// See docs/leases.md.
package election

// Package store defines the Store contract every piece of Constellation reads and writes desired
// state through, the deterministic state machine that implements its semantics (Apply), and an
// in-memory implementation for tests and for controllers' unit tests.
//
// The replicated implementation (etcd-raft over bbolt) lives in pkg/store/raftstore and applies
// the same Mutations through the same Apply function, so both behave identically; the
// conformance suite in pkg/store/storetest holds them to it.
//
// Semantics, as Kubernetes':
//   - every committed change gets the next revision; an object's resourceVersion is the
//     revision of its last change;
//   - a write carrying metadata.resourceVersion is a compare-and-swap (ErrConflict when stale);
//   - generation starts at 1 and is bumped only when spec changes; Update never touches status
//     and UpdateStatus never touches anything else; a write that changes nothing is not a change;
//   - Delete of an object with finalizers only sets deletionTimestamp; the object goes when the
//     last finalizer is removed;
//   - Watch streams ADDED, MODIFIED and DELETED events after a revision, in revision order, and
//     fails with ErrTooOld when that revision's history was compacted.
//
// This package imports api/v1 and nothing else of Constellation's.
package store

// Package mongo is the ReplicaSet engine for MongoDB replica sets. It talks to each member
// directly (one go.mongodb.org/mongo-driver/v2 client per member, direct connection, dialed at
// Member.Dial) and moves the set one safe step per Reconcile:
//
//   - replSetInitiate once, on the index-0 member, with itself as the only member (an
//     AlreadyInitialized answer is success); never when a primary was ever recorded.
//   - then, on the primary and only when the current config is committed by a majority of its
//     voters, one replSetReconfig per step that adds, removes or re-votes ONE member (mongod's
//     one-voting-change rule); the voter count is kept odd and at most 7, the rest vote 0 with
//     priority 0; a member that would be removed or made unelectable while primary is stepped
//     down first (replSetStepDown).
//   - replSetReconfig with force only when no member is primary, a majority of the voters is
//     known gone (their replicas are not Ready or no longer desired, and they do not answer), and
//     spec.mongo.allowForceReconfig is set.
//
// The pure part (plan.go: current config and desired members to the next single step) is
// table-tested; the rest is tested against the wire-level fake in test/fakes/mongo.
//
// It imports pkg/replicaset and api/v1 only of ours, never controllers.
package mongo

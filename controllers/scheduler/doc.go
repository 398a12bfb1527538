// Package scheduler places every replica of every Service on a node and drives rolling updates.
// One scheduler is active in the cluster: the agent runs it inside the leader context of the
// `controller` Lease.
//
// Compute (plan.go) is the pure planner: node health, placement.nodeSelector, maxPerNode,
// spread, cordon and drain, lost nodes, spreading back, and one rolling-update step at a time
// within maxSurge/maxUnavailable. The Scheduler reconciler feeds it from the store and the
// observed view and records its answer in status.assignments and the Progressing condition
// (the only status fields it writes, with the revisions it keeps for `rollout undo`).
//
// The revision a Service runs is its spec hash plus the versions (uid, generation) of the
// Secrets its rolling env secretRefs name (revisionHash, spechash.Revision): a Secret's new
// value is a new revision, rolled out like an image update. The scheduler reads Secrets' keys
// and metadata only; its Secret cache blanks the values (secrets.go).
//
// It imports api/v1, pkg/store, pkg/observed, pkg/spechash and controllers/runtime; never
// pkg/docker.
package scheduler

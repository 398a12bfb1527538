// Package scheduler places every replica of every Service on a node and drives rolling updates.
// One scheduler is active in the cluster: the agent runs it inside the leader context of the
// `controller` Lease.
//
// Compute (plan.go; its Input and Plan in planinput.go, node picking in placement.go) is the
// pure planner: node health, placement.nodeSelector, maxPerNode,
// spread, cordon and drain, lost nodes, sticky named volumes (a replica bound to its volume's node
// waits for it: WaitingForNode), spreading back, and one rolling-update step at a time
// within maxSurge/maxUnavailable. The Scheduler reconciler feeds it from the store and the
// observed view and records its answer in status.assignments and the Progressing condition
// (the only status fields it writes, with the revisions it keeps for `rollout undo`).
//
// The revision a Service runs is its spec hash plus, for the Secrets its rolling env
// secretRefs name, their uid and keyed digests of the values it reads (revisionHash,
// spechash.Revision): a new value is a new revision, rolled out like an image update; a
// re-seal under a new data key is not. The scheduler's Secret cache holds digests, never
// values (secrets.go).
//
// The reconciler is scheduler.go; its loop and wake-ups run.go; what it feeds Compute, read
// from the caches while Run runs or from the store, input.go and reader.go.
//
// It imports api/v1, pkg/store, pkg/observed, pkg/spechash and controllers/ctrl; never
// pkg/docker.
package scheduler

// Package spechash computes the hash of the part of a Service spec that defines its containers,
// and the revision hash replicas run: the spec hash, plus a digest of the versions (uid and
// generation, never the values) of the Secrets the spec's rolling secretRefs name. The node
// reconciler labels every container with the revision hash (constellation.spec-hash) and
// replaces a container whose hash differs from its assignment's; the scheduler computes it and
// records it per assignment and in status.currentRevision; the status controller counts
// updatedReplicas with it (Current).
//
// It imports only api/v1, so that every controller can use it without linking the Docker client.
package spechash

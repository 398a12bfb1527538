// Package spechash computes the hash of the part of a Service spec that defines its containers.
// The node reconciler labels every container with it (constellation.spec-hash) and replaces a
// container whose hash differs; the scheduler records it per assignment; the status controller
// counts updatedReplicas with it.
//
// It imports only api/v1, so that every controller can use it without linking the Docker client.
package spechash

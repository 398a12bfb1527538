// Package chaos runs hack/chaos.sh against a locally started agent on the real dockerd
// (docs/chaos.md): the script must find the cluster's replicas, kill them, and report each
// round's recovery.
package chaos

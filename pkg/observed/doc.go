// Package observed holds the cluster's observed state as one agent sees it: which nodes are
// alive and what each node's containers are doing. The node-local Docker reconciler publishes
// its own replicas here, gossip carries them to every other agent, and the Traefik provider,
// the scheduler and the status controller read them, without going through the store.
//
// It imports api/v1 only.
package observed

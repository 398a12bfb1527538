// Package nodehealth is the one rule for "is this node lost?". The scheduler, the status
// controller, the DNS controller and the Traefik renderer all ask it, so that a node is never
// re-placed by one of them while another still routes to it.
//
// A node counts as lost only on a positive verdict: the gossip failure detector declared it
// dead, it left without the restart marker, or it stopped gracefully (an agent restart) and did
// not come back within the restart grace period. A node merely absent from one agent's gossip
// view is Unknown, which moves nothing. When more than half of the nodes are not Ready at once
// the disruption brake holds: no consumer acts on any loss, since a wrong view is then likelier
// than half the cluster gone.
//
// It imports api/v1 and pkg/observed only.
package nodehealth

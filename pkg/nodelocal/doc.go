// Package nodelocal serves the per-node API of pkg/nodeapi on an agent: a replica's logs, an
// exec session in it, its named volumes and their archives, one docker stats sample of its
// replicas (stats.go), the engine's images and their archives (images.go), from this node's
// Docker engine;
// a request for another node is forwarded to that node's agent with the caller's own
// Authorization header, so the node that serves it checks the caller's token and scope again
// and forwarding never widens what a caller may do. A forwarded request is never forwarded
// again. A node that cannot be reached answers 502 naming it.
//
// It must not import controllers or pkg/agent; the agent wires it (pkg/agent/nodeapi.go).
package nodelocal

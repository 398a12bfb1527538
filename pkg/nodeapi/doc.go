// Package nodeapi is the protocol of the per-node part of the agent's API: what only the node
// running a replica can do, because it talks to that node's Docker engine.
//
//	GET  /node/{node}/logs                       a replica's log lines (read scope)
//	POST /node/{node}/exec                       a command in a replica, upgraded stream (admin)
//	GET  /node/{node}/volumes                    the named volumes on the node, with sizes (read)
//	GET  /node/{node}/volumes/{volume}/archive   a tar of a volume (admin)
//	PUT  /node/{node}/volumes/{volume}/archive   extract a tar into a volume (admin)
//	GET  /node/{node}/stats                      one docker stats sample of its replicas (read)
//	GET  /node/{node}/images                     the engine's images: ID, tags, digests, size (read)
//	GET  /node/{node}/images/archive?ref=REF     `docker save REF` as a stream, 404 naming REF if absent (admin)
//	PUT  /node/{node}/images/archive             `docker load` of the body; answers what it loaded (admin)
//	GET  /cluster/images/archive?ref=REF         the same save for the other agents: cluster (peer) secret, never forwarded
//
// Every agent serves every path (pkg/nodelocal); one for another node is forwarded to it. Logs
// are newline-delimited JSON (LogEntry), stats one NodeStats, archives plain tar, and the exec
// stream a framed protocol over an HTTP/1.1 Upgrade (frame.go).
//
// It holds only the wire format, so that ctl links it: it imports nothing of ours.
package nodeapi

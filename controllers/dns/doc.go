// Package dns converges DNSRecord objects, and the per-node records the agent asks for, in
// Cloudflare. The agent runs it only on the node holding the "controller" Lease, and a Leader
// gate fences every write: a controller that has lost its lease stops writing even mid-reconcile.
//
// Each reconcile reads the DNSRecord and the cluster (Node and Lease objects, the gossip view),
// computes the records wanted (plan.go, pure), lists what Cloudflare has at that name, and plans
// creates, updates and deletes with Compute (pure, table-tested), then applies the plan.
//
// Ownership: every record the controller creates carries the comment
// "constellation:<cluster>/<dnsrecord>" (per-node records: "constellation:<cluster>/node:<node>").
// A record without exactly that comment is foreign: it is never updated or deleted, and one
// standing in the way (same name and type, CNAME exclusivity, identical TXT) is reported as
// Synced=False, reason ForeignRecord, instead of being fought.
//
// Budget: a reconcile costs one list call (per-node records: one paginated zone listing) plus one
// call per record written. Changes to nodes and leases do not reconcile records directly: a
// coalescing pass, at most once per Config.Coalesce, recomputes each record's wanted contents in
// memory and enqueues only the records whose wanted contents changed; a node that is not Ready
// keeps its records for Config.NodeGrace, so a flapping node costs nothing. Drift is corrected by
// the zone resync (resync.go): each Config.Resync every zone in use is listed once, paginated,
// and all its records are converged from that listing, so a resync costs zones × pages calls
// whatever the number of records.
//
// Cannot see is not gone: a node's own record is deleted only when nodeLost says the node is
// lost (a positive verdict past the grace period, or its Node object deleted), never because
// this agent's gossip view lacks it; and when more than half the nodes look lost at once the
// disruption brake deletes no record that follows nodes (targets.go, plan.go).
//
// It imports api/v1, pkg/store, pkg/observed, pkg/dns/cloudflare and controllers/runtime; nothing
// imports it but the agent.
package dns

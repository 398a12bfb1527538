// Package doctor holds the checks of `ctl doctor` (docs/doctor.md): pure functions from what was
// measured to a verdict (nodeapi.Check: OK, WARN or FAIL, a message and a hint), so that each can
// be table-tested by breaking its input; Local gathers a node's inputs through injected functions
// and runs the node's checks (the agent serves them, pkg/agent/diagnostics.go); the cluster-wide
// checks (quorum, voters, clock skew, gossip agreement) run in ctl over every node's answer.
//
// ctl links it, so it imports only the standard library and pkg/nodeapi: the agent measures
// (Docker, raft, gossip, Traefik, Cloudflare, mesh DNS) and hands the results in.
package doctor

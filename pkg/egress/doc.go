// Package egress probes the egress a gateway container provides (a WARP client, a VPN) end to
// end and decides how to heal it: the probe (Probe, from inside the gateway's network namespace
// or through its proxy port) and the escalation state machine (Healer: reconnect hook, restart,
// give up so the scheduler re-places the gateway), both driven by an injected clock. The node
// reconciler (controllers/node) runs them against Docker; docs/egress.md describes the whole
// chain.
//
// It imports api/v1 and the standard library (plus x/sys for setns) only: never controllers.
package egress

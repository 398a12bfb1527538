// Package tailscaletest is a fake tailscaled LocalAPI on a unix socket, for tests of
// pkg/tailscale and of the agent's Tailscale discovery. It answers as tailscaled does where
// pkg/tailscale looks: 403 "invalid localapi request" to a wrong Host or to a request with a
// Referer or Origin, 403 "status access denied" to a caller it does not permit, the status JSON
// (ipnstate.Status field names) with whatever BackendState the test sets.
//
// It imports pkg/tailscale (for the status types) and the standard library only.
package tailscaletest

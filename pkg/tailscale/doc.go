// Package tailscale is a small client of the local Tailscale daemon's LocalAPI: it reads
// GET /localapi/v0/status (the shape of `tailscale status --json`) over tailscaled's unix
// socket, for --node.advertiseAddress=tailscale and --join=tailscale:TAG (docs/tailscale.md).
//
// It is hand-written on net/http with a unix dialer rather than tailscale.com/client/local:
// that module pulls in most of Tailscale (wireguard-go, gvisor and dozens of modules) for the
// one read-only call the agent makes, and its version would have to follow tailscaled's. The
// LocalAPI is stable where this package touches it: the Host header "local-tailscaled.sock",
// the status JSON's field names, 403 for a caller it does not permit.
//
// It imports the standard library only.
package tailscale

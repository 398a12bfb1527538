package config

import (
	"fmt"
	"strings"
	"time"
)

// AdvertiseTailscale as --node.advertiseAddress picks this node's Tailscale IPv4 from the local
// tailscaled at start (docs/tailscale.md).
const AdvertiseTailscale = "tailscale"

// TailscaleJoinPrefix starts a --join entry that discovers peers through the local tailscaled:
// "tailscale:TAG" joins through the online peers tagged "tag:TAG".
const TailscaleJoinPrefix = "tailscale:"

// DefaultTailscaleSocket is tailscaled's LocalAPI socket on Linux.
const DefaultTailscaleSocket = "/var/run/tailscale/tailscaled.sock"

// Tailscale is the local Tailscale daemon, asked only when --node.advertiseAddress=tailscale or
// a --join entry is tailscale:TAG.
type Tailscale struct {
	// Socket is tailscaled's LocalAPI unix socket. Default /var/run/tailscale/tailscaled.sock.
	Socket string `description:"tailscaled's LocalAPI socket (default /var/run/tailscale/tailscaled.sock)"`
	// Wait is how long the agent waits at start for tailscaled to answer and be connected
	// (under systemd it may start alongside). Default 30s; 0 asks once.
	Wait time.Duration `description:"How long to wait at start for tailscaled to be running and connected"`
}

// DefaultTailscaleWait is the default --tailscale.wait.
const DefaultTailscaleWait = 30 * time.Second

// IsTailscaleJoin reports whether a --join entry discovers peers through Tailscale.
func IsTailscaleJoin(j string) bool { return strings.HasPrefix(j, TailscaleJoinPrefix) }

// TailscaleTag returns the ACL tag ("tag:NAME") of a tailscale:NAME --join entry; NAME may be
// given with or without its "tag:" prefix.
func TailscaleTag(j string) string {
	return "tag:" + strings.TrimPrefix(strings.TrimPrefix(j, TailscaleJoinPrefix), "tag:")
}

// UsesTailscale reports whether the configuration asks the local tailscaled for anything.
func (c *Config) UsesTailscale() bool {
	if c.Node.AdvertiseAddress == AdvertiseTailscale {
		return true
	}
	for _, j := range c.Join {
		if IsTailscaleJoin(j) {
			return true
		}
	}
	return false
}

// validateTailscale checks the tailscale: --join entries and fills the socket default.
func (c *Config) validateTailscale() []error {
	var errs []error
	if c.Tailscale.Socket == "" {
		c.Tailscale.Socket = DefaultTailscaleSocket
	}
	if c.Tailscale.Wait < 0 {
		errs = append(errs, fmt.Errorf("--tailscale.wait: must not be negative, got %s", c.Tailscale.Wait))
	}
	for _, j := range c.Join {
		if !IsTailscaleJoin(j) {
			continue
		}
		name := strings.TrimPrefix(TailscaleTag(j), "tag:")
		if !validTagName(name) {
			errs = append(errs, fmt.Errorf("--join: %q: a Tailscale tag name is letters, digits and dashes, starting with a letter (tailscale:NAME for tag:NAME)", j))
		}
	}
	return errs
}

// validTagName is Tailscale's rule for tag names (tailcfg.CheckTag): an ASCII letter, then
// letters, digits and dashes.
func validTagName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-'):
		default:
			return false
		}
	}
	return true
}

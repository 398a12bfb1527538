package dns

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server. Zero fields take the defaults below (DefaultConfig spells them out).
type Config struct {
	// ResolvConf is the resolv.conf the upstream resolvers are read from. Its nameservers are
	// used as written, loopback ones included: the server runs in the agent, in the host's network
	// namespace, where a local stub such as systemd-resolved's 127.0.0.53 is reachable (it would
	// not be from inside a container, which is why containers ask this server rather than the
	// host's resolv.conf). The file is re-read when its size or modification time changes.
	// Default "/etc/resolv.conf".
	ResolvConf string
	// Upstreams, when not empty, replaces ResolvConf: "host" or "host:port" (port 53 by default).
	// Default empty.
	Upstreams []string
	// TTL is the time to live of mesh answers and, through the SOA minimum, of negative mesh
	// answers (NXDOMAIN, NODATA). Short, so that a changed table is seen quickly even by clients
	// that cache. Default 5s.
	TTL time.Duration
	// ForwardTimeout bounds one attempt at one upstream; on timeout or error the next upstream is
	// tried, and SERVFAIL is returned when all fail. Default 2s.
	ForwardTimeout time.Duration
	// MaxForwards bounds the forwarded queries in flight across all listeners; a query beyond it
	// gets SERVFAIL at once (mesh names are always answered). Default 256.
	MaxForwards int
	// MaxTCPConns bounds the open TCP connections per listener; further connections wait in the
	// kernel's accept queue. Default 64.
	MaxTCPConns int
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the server's metrics. Nil: not registered.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		ResolvConf:     "/etc/resolv.conf",
		TTL:            5 * time.Second,
		ForwardTimeout: 2 * time.Second,
		MaxForwards:    256,
		MaxTCPConns:    64,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ResolvConf == "" {
		c.ResolvConf = d.ResolvConf
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = d.ForwardTimeout
	}
	if c.MaxForwards == 0 {
		c.MaxForwards = d.MaxForwards
	}
	if c.MaxTCPConns == 0 {
		c.MaxTCPConns = d.MaxTCPConns
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.TTL < time.Second || c.TTL > time.Hour:
		return fmt.Errorf("meshdns: config ttl: must be 1s-1h, got %s", c.TTL)
	case c.ForwardTimeout < 0:
		return fmt.Errorf("meshdns: config forwardTimeout: must be positive, got %s", c.ForwardTimeout)
	case c.MaxForwards < 0:
		return fmt.Errorf("meshdns: config maxForwards: must be positive, got %d", c.MaxForwards)
	case c.MaxTCPConns < 0:
		return fmt.Errorf("meshdns: config maxTCPConns: must be positive, got %d", c.MaxTCPConns)
	}
	for i, u := range c.Upstreams {
		if _, err := upstreamAddr(u); err != nil {
			return fmt.Errorf("meshdns: config upstreams[%d]: %w", i, err)
		}
	}
	return nil
}

// upstreamAddr turns "host" or "host:port" (IP literals only) into "ip:port".
func upstreamAddr(s string) (string, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip, 53).String(), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want an IP address or IP:port", s)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil {
		return "", fmt.Errorf("%q: want an IP address or IP:port: %w", s, err)
	}
	return ap.String(), nil
}

package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/traefik/paerser/env"
	"github.com/traefik/paerser/file"
	"github.com/traefik/paerser/flag"
)

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "CONSTELLATION_"

// Config is the agent's whole configuration.
type Config struct {
	// ConfigFile is a TOML file loaded before the environment and flags. Default none.
	ConfigFile string `description:"TOML configuration file, loaded before CONSTELLATION_* variables and flags" toml:"-"`
	// DataDir holds the store, the gossip key and the cluster token. Default /var/lib/constellation.
	DataDir string `description:"Data directory (store, keys)"`
	// Join lists API addresses (host:port) of cluster members to join. Empty: bootstrap a
	// one-node cluster (or restart the existing one in DataDir).
	Join []string `description:"API addresses (host:port,...) of members to join; empty bootstraps a new cluster"`
	// Node describes this node.
	Node Node `description:"This node"`
	// API is the HTTP API.
	API API `description:"HTTP API"`
	// Raft is the store's peer transport.
	Raft Raft `description:"Replicated store transport"`
	// Gossip is the membership and observed-state protocol.
	Gossip Gossip `description:"Gossip membership"`
	// Docker is the local engine.
	Docker Docker `description:"Local Docker engine"`
	// DNS configures the DNS provider.
	DNS DNS `description:"DNS provider"`
	// Log configures logging.
	Log Log `description:"Logging"`
	// Store selects the store implementation.
	Store Store `description:"Store"`
	// Security configures what the agent allows its Services to do on the host.
	Security Security `description:"Host access and credentials"`
	// Mesh configures service discovery across nodes.
	Mesh Mesh `description:"Service mesh"`
	// Snapshot configures scheduled snapshots (snapshot.go).
	Snapshot Snapshot `description:"Scheduled snapshots of the store"`
	// Restore is a snapshot file (ctl snapshot save, or a scheduled one) to seed a new cluster
	// from, on an empty data dir. Default none.
	Restore string `description:"Snapshot file to seed a NEW cluster from (an empty data dir only; docs/snapshots.md)"`
	// RestoreSecretFile is the cluster.secret of the cluster the snapshot was taken from: the
	// snapshot's Secrets are sealed under it. Needed when the snapshot holds Secrets, unless
	// that file was copied into DataDir. Default none.
	RestoreSecretFile string `description:"cluster.secret of the cluster the --restore snapshot came from (its Secrets are sealed under it)"`
	// Tailscale is the local Tailscale daemon (tailscale.go).
	Tailscale Tailscale `description:"Local Tailscale daemon (--node.advertiseAddress=tailscale, --join=tailscale:TAG)"`
	// Images configures the images copied from peers (images.go).
	Images Images `description:"Images copied from other nodes"`
}

// DefaultMeshCIDR is the default --mesh.cidr.
const DefaultMeshCIDR = "10.213.0.0/16"

// Mesh configures the service mesh.
type Mesh struct {
	// CIDR is the IPv4 prefix Services' and replicas' virtual IPs are allocated from, /8 to
	// /24. Every agent should use the same; the controller-lease holder's value counts for new
	// allocations, and addresses already allocated are kept when it changes (docs/mesh.md).
	// Default 10.213.0.0/16.
	CIDR string `description:"IPv4 prefix (/8 to /24) virtual IPs of Services and replicas are allocated from"`
	// Disabled runs no mesh data plane on this node: no virtual IPs on lo, no proxy, no name
	// server, containers resolve as Docker makes them. Virtual IPs are still allocated. Default
	// false: every node runs the plane, a node without Docker too (its host and controllers
	// reach Services by mesh address).
	Disabled bool `description:"Run no mesh data plane (virtual IPs, proxy, name server) on this node"`
}

// Security configures host access and where the agent's credentials live.
type Security struct {
	// AllowHostAccess lets Services that set spec.hostAccess use anything on the host: any bind
	// mount, privileged, host namespaces, added capabilities. Default false: Services that opt
	// in may bind-mount ordinary host paths, but sensitive ones (/, /etc, the Docker socket, the
	// data dir, ... : pkg/hostaccess) only under HostPaths, and nothing else of the host.
	AllowHostAccess bool `description:"Allow Services that set hostAccess to bind-mount any host path, run privileged and use host namespaces"`
	// HostPaths lists host path prefixes (absolute) that Services setting spec.hostAccess may
	// bind-mount even when sensitive, without AllowHostAccess. Default none.
	HostPaths []string `description:"Host path prefixes Services with hostAccess may bind-mount (comma-separated)"`
	// JoinCAFingerprint pins the cluster CA ("sha256:HEX") a joining agent accepts. Default
	// none: the member must prove it knows the joining agent's admin token instead.
	JoinCAFingerprint string `description:"SHA-256 fingerprint of the cluster CA to accept when joining (default: a proof over the admin token)"`
}

// Node describes this node.
type Node struct {
	// Name defaults to the host name.
	Name string `description:"Node name (default: the host name)"`
	// Labels are node labels (role=lb, zone=...). Default none.
	Labels map[string]string `description:"Node labels, --node.labels.KEY=VALUE"`
	// AdvertiseAddress is the IP other nodes and Traefik reach this node's containers at.
	// Default: the host part of the API address when it is not a wildcard, else 127.0.0.1.
	AdvertiseAddress string `description:"IP other nodes reach this node at"`
	// RestartGrace is how long the cluster keeps a node whose agent stopped gracefully (an
	// upgrade, a restart by its supervisor; its containers keep running) as it was: replicas not
	// re-placed, endpoints kept in every Traefik, DNS records kept. A node killed outright is
	// re-placed within gossip's detection time regardless. The controller-lease holder's value
	// counts. Default 60s.
	RestartGrace time.Duration `description:"How long a gracefully stopped (restarting) agent's replicas, endpoints and DNS records are kept before re-placing"`
}

// API is the HTTP API.
type API struct {
	// Address to listen on. Default 127.0.0.1:7480.
	Address string `description:"Listen address of the HTTP API"`
	// TokenFile holds the API tokens: one per line as "NAME SCOPE TOKEN" (scope admin, read
	// or provider), or a single token (admin). Mode 0600; re-read when it changes and on
	// SIGHUP. A joining agent presents its first admin token. Required when Address is not
	// loopback. Default none (a loopback API without tokens: whoever is on the machine is admin).
	TokenFile string `description:"File of API tokens (NAME SCOPE TOKEN per line, or one admin token); required off loopback"`
	// TokenSecret names a Secret holding more API tokens: each key a token's name, each value
	// "SCOPE TOKEN". Re-read within 2 s of a change; the file's tokens win a name clash. A
	// joining agent still needs TokenFile (the store is not there yet). Default none.
	TokenSecret string `description:"Secret holding more API tokens (key: name, value: \"SCOPE TOKEN\")"`
	// TLS serves the API over TLS even on a loopback address (off loopback it always does).
	// Default false.
	TLS bool `description:"Serve the API over TLS on a loopback address too (always on off loopback)"`
}

// Raft is the store's peer transport.
type Raft struct {
	// Address to listen on for raft peers. Default :7481.
	Address string `description:"Listen address for raft peers"`
}

// Gossip is the membership protocol.
type Gossip struct {
	// Address to listen on (TCP and UDP). Default :7482.
	Address string `description:"Listen address for gossip (TCP and UDP)"`
	// KeyFile holds the 32-byte encryption key, base64. Default: generated in DataDir at
	// bootstrap, received from the cluster on join.
	KeyFile string `description:"Gossip encryption key file (base64, 32 bytes)"`
}

// Docker is the local engine.
type Docker struct {
	// Host is the engine's address. Default: DOCKER_HOST, else unix:///var/run/docker.sock.
	Host string `description:"Docker engine address (default DOCKER_HOST or the local socket)"`
	// Disabled runs the agent without a container runtime (control plane only). Default false.
	Disabled bool `description:"Run without Docker (control plane only)"`
}

// DNS configures the DNS provider.
type DNS struct {
	Cloudflare  Cloudflare  `description:"Cloudflare API"`
	NodeRecords NodeRecords `description:"Per-node A records"`
}

// Cloudflare is the Cloudflare API v4 client.
type Cloudflare struct {
	// TokenFile holds the API token (mode 0600). Default none: the DNS controller is off.
	TokenFile string `description:"Cloudflare API token file (mode 0600)"`
	// APIURL is the API base. Default https://api.cloudflare.com/client/v4.
	APIURL string `description:"Cloudflare API base URL"`
}

// NodeRecords asks for <node>.<zone> A records for every Ready node.
type NodeRecords struct {
	// Zone. Default none (off).
	Zone string `description:"Zone for <node>.<zone> A records"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `description:"Log level: debug, info, warn, error"`
	// Format is text or json. Default text.
	Format string `description:"Log format: text or json"`
}

// Store selects the store.
type Store struct {
	// Memory runs the in-memory store: nothing persisted, single node. For tests. Default false.
	Memory bool `description:"Use the in-memory store (nothing persisted; tests only)"`
}

// Default returns the configuration with every default filled in.
func Default() *Config {
	host, _ := os.Hostname()
	return &Config{
		DataDir: "/var/lib/constellation",
		Node:    Node{Name: strings.ToLower(host), RestartGrace: 60 * time.Second},
		API:     API{Address: "127.0.0.1:7480"},
		Raft:    Raft{Address: ":7481"},
		Gossip:  Gossip{Address: ":7482"},
		DNS:     DNS{Cloudflare: Cloudflare{APIURL: "https://api.cloudflare.com/client/v4"}},
		Log:     Log{Level: "info", Format: "text"},
		Mesh:    Mesh{CIDR: DefaultMeshCIDR},

		Tailscale: Tailscale{Socket: DefaultTailscaleSocket, Wait: DefaultTailscaleWait},
	}
}

// Load layers defaults, the TOML file named by --configFile (or CONSTELLATION_CONFIGFILE), the
// environment and the flags in args.
func Load(args, environ []string) (*Config, error) {
	cfg := Default()
	// Find the config file first: it is applied before env and flags.
	probe := &Config{}
	if err := flag.Decode(args, probe); err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	envProbe := &Config{}
	if vars := env.FindPrefixedEnvVars(environ, EnvPrefix, envProbe); len(vars) > 0 {
		if err := env.Decode(vars, EnvPrefix, envProbe); err != nil {
			return nil, fmt.Errorf("environment: %w", err)
		}
	}
	path := probe.ConfigFile
	if path == "" {
		path = envProbe.ConfigFile
	}
	if path != "" {
		if err := file.Decode(path, cfg); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		cfg.ConfigFile = path
	}
	if vars := env.FindPrefixedEnvVars(environ, EnvPrefix, cfg); len(vars) > 0 {
		if err := env.Decode(vars, EnvPrefix, cfg); err != nil {
			return nil, fmt.Errorf("environment: %w", err)
		}
	}
	if err := flag.Decode(args, cfg); err != nil {
		return nil, fmt.Errorf("flags: %w", err)
	}
	cfg.Join = splitList(cfg.Join)
	cfg.Security.HostPaths = splitList(cfg.Security.HostPaths)
	return cfg, cfg.Validate()
}

// splitList accepts both repeated values and comma-separated lists.
func splitList(in []string) []string {
	var out []string
	for _, v := range in {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Validate checks the configuration and fills derived defaults. Errors name the option.
func (c *Config) Validate() error {
	var errs []error
	if c.Node.Name == "" {
		errs = append(errs, errors.New("--node.name: required (the host name could not be read)"))
	}
	c.Node.Name = strings.ToLower(c.Node.Name)
	if c.Node.RestartGrace < 0 {
		errs = append(errs, fmt.Errorf("--node.restartGrace: must not be negative, got %s", c.Node.RestartGrace))
	}
	if c.Images.GCAfter < 0 {
		errs = append(errs, fmt.Errorf("--images.gcAfter: must not be negative, got %s", c.Images.GCAfter))
	}
	if _, err := c.Images.SendRateBytes(); err != nil {
		errs = append(errs, fmt.Errorf("--images.sendRate: %w", err))
	}
	for i, p := range c.Security.HostPaths {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("--security.hostPaths: %q is not an absolute path", p))
			continue
		}
		c.Security.HostPaths[i] = filepath.Clean(p)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--dataDir: required"))
	} else if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	apiHost, _, err := net.SplitHostPort(c.API.Address)
	if err != nil {
		errs = append(errs, fmt.Errorf("--api.address: %w", err))
	}
	for name, addr := range map[string]string{"--raft.address": c.Raft.Address, "--gossip.address": c.Gossip.Address} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	for _, j := range c.Join {
		if IsTailscaleJoin(j) {
			continue // validateTailscale
		}
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(j, "http://"), "https://")); err != nil {
			errs = append(errs, fmt.Errorf("--join: %q is not host:port", j))
		}
	}
	if c.Node.AdvertiseAddress == "" {
		if ip := net.ParseIP(apiHost); ip != nil && !ip.IsUnspecified() {
			c.Node.AdvertiseAddress = apiHost
		} else {
			c.Node.AdvertiseAddress = "127.0.0.1"
		}
	}
	if c.Node.AdvertiseAddress != AdvertiseTailscale && net.ParseIP(c.Node.AdvertiseAddress) == nil {
		errs = append(errs, fmt.Errorf("--node.advertiseAddress: %q is not an IP address", c.Node.AdvertiseAddress))
	}
	if !IsLoopback(c.API.Address) && c.API.TokenFile == "" {
		errs = append(errs, fmt.Errorf("--api.tokenFile: required when --api.address (%s) is not a loopback address", c.API.Address))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log.level: must be debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log.format: must be text or json, got %q", c.Log.Format))
	}
	if p, err := ParseMeshCIDR(c.Mesh.CIDR); err != nil {
		errs = append(errs, fmt.Errorf("--mesh.cidr: %w", err))
	} else {
		c.Mesh.CIDR = p.String()
	}
	errs = append(errs, c.validateSnapshot()...)
	errs = append(errs, c.validateTailscale()...)
	if c.Store.Memory && len(c.Join) > 0 {
		errs = append(errs, errors.New("--store.memory: an in-memory store cannot join a cluster"))
	}
	return errors.Join(errs...)
}

// ParseMeshCIDR parses a --mesh.cidr value: an IPv4 prefix between /8 and /24, given by its
// network address ("10.213.0.0/16", not "10.213.5.1/16", which is more likely a typo than a
// wish for the whole /16).
func ParseMeshCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (like %s)", s, DefaultMeshCIDR)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 prefix", s)
	}
	if p.Bits() < 8 || p.Bits() > 24 {
		return netip.Prefix{}, fmt.Errorf("%q: the prefix length must be /8 to /24, got /%d", s, p.Bits())
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// IsLoopback reports whether a listen address only accepts local connections.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadSecretFile reads a token or key file, refusing one that others can read.
func ReadSecretFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s: mode %04o is readable by others; chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return tok, nil
}

package gossip

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/constellation-sh/constellation/internal/atomicfile"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// KeySize is the size of the gossip encryption key: AES-256.
const KeySize = 32

// KeyFile is the name of the single-key file (SaveKey, LoadKey) in the data directory.
const KeyFile = "gossip.key"

// Config configures one agent's gossip. Start from DefaultConfig. The timing defaults are tuned
// so that on a small LAN cluster a killed node is declared dead by every survivor in about 1.5 s
// (under 2 s at worst) while a node that is merely slow has time to answer or refute; see
// docs/gossip.md for the arithmetic.
type Config struct {
	// NodeName is this node's unique name in the cluster. Required.
	NodeName string
	// BindAddress is host:port where gossip listens on UDP and TCP. Default ":7482". Port 0 picks
	// a free port (tests).
	BindAddress string
	// AdvertiseAddress is the IP (or host name resolving to one) other nodes reach this node at,
	// for gossip and for its containers' published ports. Default: the bind host when it is a
	// specific IP, otherwise memberlist's choice of a private address of this machine.
	AdvertiseAddress string
	// AdvertisePort is the gossip port other nodes dial. Default 0: the bound port.
	AdvertisePort int
	// Labels are the node's labels, carried in its metadata. Default none.
	Labels map[string]string
	// APIAddress and RaftAddress are advertised in the node's metadata. Default empty.
	APIAddress  string
	RaftAddress string
	// Version is the agent version, advertised in the node's metadata. Default empty.
	Version string

	// EncryptionKey is the primary AES-256 key (KeySize bytes) that encrypts and authenticates
	// every gossip packet and stream. Required unless DisableEncryption. See LoadKeyring.
	EncryptionKey []byte
	// ExtraKeys are further keys accepted for decryption, for key rotation. Default none.
	ExtraKeys [][]byte
	// DisableEncryption sends gossip in clear text (tests only). Default false.
	DisableEncryption bool

	// ProbeInterval is the time between failure-detector probes of one random member. A failed
	// probe takes one ProbeInterval. Default 300ms (memberlist's LAN default: 1s).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct UDP ping waits for its ack before asking IndirectChecks
	// other members to try. It must stay below ProbeInterval/2 so that their nacks come back in
	// time for Lifeguard's self-health check. Default 120ms (LAN default: 500ms).
	ProbeTimeout time.Duration
	// IndirectChecks is how many members are asked to probe a node that missed a direct ping.
	// Default 3.
	IndirectChecks int
	// SuspicionMult scales the suspicion timeout: SuspicionMult × max(1, log10(N)) × ProbeInterval
	// before a suspect is declared dead, if SuspicionMult-2 other members confirm it (Lifeguard).
	// Default 3 (LAN default: 4).
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds the suspicion timeout while confirmations are missing: it
	// starts at SuspicionMaxTimeoutMult × the minimum and shrinks as confirmations arrive.
	// Default 4 (LAN default: 6).
	SuspicionMaxTimeoutMult int
	// AwarenessMaxMultiplier caps Lifeguard's local health score: a node that misses nacks slows
	// its own probing by up to this factor instead of accusing healthy peers. Default 8. Must be
	// at least 2 (1 would switch Lifeguard's self-awareness off).
	AwarenessMaxMultiplier int
	// GossipInterval is the time between gossip rounds (only sent when there is something to
	// say). Default 100ms (LAN default: 200ms).
	GossipInterval time.Duration
	// GossipNodes is how many random members each gossip round goes to. Default 3.
	GossipNodes int
	// RetransmitMult: each broadcast is sent RetransmitMult × ceil(log10(N+1)) times. Default 4.
	RetransmitMult int
	// PushPullInterval is the period of full state exchange with one random member (TCP),
	// scaled up by memberlist past 32 nodes. Default 15s (LAN default: 30s).
	PushPullInterval time.Duration
	// TCPTimeout bounds one TCP exchange (push/pull, fallback ping). Default 5s.
	TCPTimeout time.Duration
	// DeadNodeReclaimTime lets a dead node come back under the same name at another address
	// after this long. Default 5s.
	DeadNodeReclaimTime time.Duration
	// GossipToTheDeadTime is how long dead nodes keep being gossiped to, so they can learn they
	// were declared dead and refute. Default 15s.
	GossipToTheDeadTime time.Duration

	// DigestInterval is how often a node re-announces its replica digest in its metadata when
	// its replicas changed; a node whose copy differs pulls the full state after one more
	// DigestInterval. Default 1s.
	DigestInterval time.Duration
	// ReconnectInterval is how often this node tries to reach nodes declared dead (not those
	// that left), so that a partition that lasted longer than GossipToTheDeadTime still heals.
	// Default 10s; 0 turns it off.
	ReconnectInterval time.Duration
	// ReconnectTimeout is how long a dead node keeps being retried. Default 24h.
	ReconnectTimeout time.Duration

	// MaxMessageSize bounds one broadcast message (one replica); larger ones from peers are
	// dropped and counted. Replicas whose encoding would exceed it have Message truncated.
	// Default 1024 bytes: it fits one UDP packet (1400) with memberlist's own messages.
	MaxMessageSize int
	// MaxStateSize bounds the full state sent and accepted in a push/pull. Default 4 MiB.
	MaxStateSize int
	// TombstoneTTL is how long a removed replica's tombstone is kept so a late, older update
	// cannot resurrect it. Default 5m.
	TombstoneTTL time.Duration

	// StateFile is where LeaveForRestart saves this node's replicas, and where New reads them
	// back: the restarted agent announces the replicas its containers still run from its first
	// message, instead of an empty set that would pull them from every load balancer until the
	// node reconciler has published again. Default "": nothing is saved.
	StateFile string
	// StateMaxAge: a saved state older than this is ignored (the containers may be long gone).
	// Default 10m.
	StateMaxAge time.Duration
	// ForgetLeftAfter is how long a node that left (for good or to restart) is remembered
	// before its membership and replica state are pruned; nodes declared dead are kept for
	// ReconnectTimeout, since they are retried. The store's Node object keeps the verdict.
	// Default 1h.
	ForgetLeftAfter time.Duration

	// Transport replaces the network transport (tests: an in-memory network or a transport that
	// drops packets). When set, BindAddress and AdvertisePort are ignored. Default nil.
	Transport memberlist.Transport
	// Set is the observed state gossip keeps up to date: the local node appears in it at once.
	// Required.
	Set *observed.Set
	// Logger. Default slog.Default(); gossip adds component=gossip.
	Logger *slog.Logger
	// Registerer receives gossip's metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Clock is the time replica state is stamped and aged with, and the one the anti-entropy
	// loop's tickers (digest announce, sync, reconnect, tombstone collection) run on.
	// Memberlist's own probe and gossip timers stay on the real clock. Default
	// clock.RealClock{}.
	Clock clock.WithTicker
}

// DefaultConfig returns a Config with every default filled in; NodeName and EncryptionKey are
// still to be set.
func DefaultConfig() Config {
	return Config{
		BindAddress:             ":7482",
		ProbeInterval:           300 * time.Millisecond,
		ProbeTimeout:            120 * time.Millisecond,
		IndirectChecks:          3,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 4,
		AwarenessMaxMultiplier:  8,
		GossipInterval:          100 * time.Millisecond,
		GossipNodes:             3,
		RetransmitMult:          4,
		PushPullInterval:        15 * time.Second,
		TCPTimeout:              5 * time.Second,
		DeadNodeReclaimTime:     5 * time.Second,
		GossipToTheDeadTime:     15 * time.Second,
		DigestInterval:          time.Second,
		ReconnectInterval:       10 * time.Second,
		ReconnectTimeout:        24 * time.Hour,
		MaxMessageSize:          1024,
		MaxStateSize:            4 << 20,
		TombstoneTTL:            5 * time.Minute,
		StateMaxAge:             10 * time.Minute,
		ForgetLeftAfter:         time.Hour,
		Clock:                   clock.RealClock{},
	}
}

func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gossip: %s: "+format, append([]any{field}, args...)...))
	}
	if c.NodeName == "" {
		bad("nodeName", "required")
	}
	if c.Transport == nil {
		if _, _, err := splitBind(c.BindAddress); err != nil {
			bad("bindAddress", "%v", err)
		}
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("advertisePort", "must be 0-65535, got %d", c.AdvertisePort)
	}
	if !c.DisableEncryption {
		if len(c.EncryptionKey) != KeySize {
			bad("encryptionKey", "must be %d bytes, got %d", KeySize, len(c.EncryptionKey))
		}
		for i, k := range c.ExtraKeys {
			if len(k) != KeySize {
				bad(fmt.Sprintf("extraKeys[%d]", i), "must be %d bytes, got %d", KeySize, len(k))
			}
		}
	}
	pos := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be positive, got %s", d)
		}
	}
	pos("probeInterval", c.ProbeInterval)
	pos("probeTimeout", c.ProbeTimeout)
	pos("gossipInterval", c.GossipInterval)
	pos("pushPullInterval", c.PushPullInterval)
	pos("tcpTimeout", c.TCPTimeout)
	pos("tombstoneTTL", c.TombstoneTTL)
	pos("digestInterval", c.DigestInterval)
	pos("stateMaxAge", c.StateMaxAge)
	pos("forgetLeftAfter", c.ForgetLeftAfter)
	if c.ProbeTimeout > 0 && c.ProbeInterval > 0 && 2*c.ProbeTimeout >= c.ProbeInterval {
		bad("probeTimeout", "must be below probeInterval/2 (%s) so indirect nacks return in time, got %s", c.ProbeInterval/2, c.ProbeTimeout)
	}
	if c.ReconnectInterval < 0 {
		bad("reconnectInterval", "must not be negative, got %s", c.ReconnectInterval)
	}
	if c.SuspicionMult < 1 {
		bad("suspicionMult", "must be at least 1, got %d", c.SuspicionMult)
	}
	if c.SuspicionMaxTimeoutMult < 1 {
		bad("suspicionMaxTimeoutMult", "must be at least 1, got %d", c.SuspicionMaxTimeoutMult)
	}
	if c.AwarenessMaxMultiplier < 2 {
		bad("awarenessMaxMultiplier", "must be at least 2 (Lifeguard stays on), got %d", c.AwarenessMaxMultiplier)
	}
	if c.IndirectChecks < 1 {
		bad("indirectChecks", "must be at least 1, got %d", c.IndirectChecks)
	}
	if c.GossipNodes < 1 {
		bad("gossipNodes", "must be at least 1, got %d", c.GossipNodes)
	}
	if c.RetransmitMult < 1 {
		bad("retransmitMult", "must be at least 1, got %d", c.RetransmitMult)
	}
	if c.MaxMessageSize < 256 || c.MaxMessageSize > 1200 {
		bad("maxMessageSize", "must be 256-1200 bytes (one UDP packet), got %d", c.MaxMessageSize)
	}
	if c.MaxStateSize < 4096 {
		bad("maxStateSize", "must be at least 4096 bytes, got %d", c.MaxStateSize)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Set == nil {
		bad("set", "required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(errs) == 0 {
		m := c.meta(true, true)
		m.Digest = digest{Epoch: math.MaxInt64, Seq: math.MaxUint64, Hash: math.MaxUint64}
		if b, err := encodeMeta(m); err != nil {
			bad("labels", "%v", err)
		} else if len(b) > memberlist.MetaMaxSize {
			bad("labels", "node metadata is %d bytes, memberlist allows %d: use fewer or shorter labels", len(b), memberlist.MetaMaxSize)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) meta(leaving, restarting bool) nodeMeta {
	return nodeMeta{
		Restarting: restarting,
		Name:       c.NodeName,
		Labels:     c.Labels,
		Advertise:  c.AdvertiseAddress,
		API:        c.APIAddress,
		Raft:       c.RaftAddress,
		Version:    c.Version,
		Leaving:    leaving,
	}
}

// splitBind parses host:port; an empty host binds every address.
func splitBind(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// resolveIP turns an advertise host into an IP string.
func resolveIP(host string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", fmt.Errorf("gossip: resolve advertise address %q: %w", host, err)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	if len(ips) > 0 {
		return ips[0].String(), nil
	}
	return "", fmt.Errorf("gossip: resolve advertise address %q: no address", host)
}

// NewKey returns a random encryption key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("gossip: generate key: %w", err)
	}
	return k, nil
}

// EncodeKey writes a key as the base64 text kept in files and passed between nodes.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// DecodeKey reads a base64 key and checks its size.
func DecodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("gossip: decode key: %w", err)
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("gossip: key must be %d bytes, got %d", KeySize, len(k))
	}
	return k, nil
}

// LoadKey reads dataDir/gossip.key. It returns an error wrapping fs.ErrNotExist when there is none.
func LoadKey(dataDir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("gossip: read key: %w", err)
	}
	return DecodeKey(string(b))
}

// SaveKey writes k to dataDir/gossip.key with mode 0600, atomically. A joining node saves the
// key it received through the authenticated join.
func SaveKey(dataDir string, k []byte) error {
	if len(k) != KeySize {
		return fmt.Errorf("gossip: key must be %d bytes, got %d", KeySize, len(k))
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("gossip: save key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dataDir, KeyFile), []byte(EncodeKey(k)+"\n")); err != nil {
		return fmt.Errorf("gossip: save key: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to path with mode 0600, so that a crash leaves the old file or the
// new one, never half (atomicfile.WriteFile).
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteFile(path, b, 0o600) }

package raftstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Config configures one member of the replicated store.
type Config struct {
	// NodeName names this member (the agent's --node.name). Required.
	NodeName string
	// DataDir holds raft.db. Required.
	DataDir string
	// RaftAddress is the address the peer transport listens on. Default ":7481".
	RaftAddress string
	// AdvertiseRaftAddress is the address peers dial. Default: the address bound, with an
	// unspecified host replaced by this host's first non-loopback IPv4 address (a guess: the
	// agent should pass --node.advertiseAddress with the raft port).
	AdvertiseRaftAddress string
	// ClusterToken authenticates peers on the raft transport and joiners on JoinHandler.
	// Required: every member of a cluster must carry the same token.
	ClusterToken string
	// Join lists members' API base URLs ("http://host:7480" or "host:7480") to ask to join
	// through when this node has no state yet. Empty: bootstrap a one-node cluster. Ignored
	// once the node has state.
	Join []string
	// JoinTimeout bounds the join attempts of Open. Default 60s.
	JoinTimeout time.Duration
	// JoinExtra fills JoinResponse.Extra for a node that joins through this member (the agent
	// puts the gossip key and addresses there). Optional.
	JoinExtra func(req JoinRequest) map[string]string

	// TickInterval is raft's logical clock tick. Default 100ms.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks. Default 10 (1s with the default tick).
	ElectionTicks int
	// HeartbeatTicks is the heartbeat interval in ticks. Default 1.
	HeartbeatTicks int
	// RequestTimeout bounds a write or linearizable read whose context has no deadline.
	// Default 10s.
	RequestTimeout time.Duration
	// SnapshotEntries is how many applied entries trigger a snapshot. Default 10000.
	SnapshotEntries uint64
	// CatchUpEntries is how many entries are kept behind a snapshot for slow followers.
	// Default 5000.
	CatchUpEntries uint64
	// ApplyCommitDelay is how long applied entries may wait in the open bbolt transaction
	// before it is committed (their log is already durable in the write-ahead log, so one
	// bbolt commit serves many raft Readys, as etcd's backend batch interval). Proposers and
	// watches have them before; a read (linearizable or Stale) that must see them commits the
	// batch at once. Default 100ms.
	ApplyCommitDelay time.Duration
	// WALSegmentSize is the size the write-ahead log's segment files are preallocated to.
	// Default 64 MiB.
	WALSegmentSize int64
	// HistorySize is how many events watches can replay. Default 10000.
	HistorySize int
	// MaxVoters is the most voters the cluster keeps; further members stay learners. Must be
	// odd. Default 5.
	MaxVoters int
	// PromoteInterval is how often the leader considers promoting caught-up learners.
	// Default 1s.
	PromoteInterval time.Duration
	// DeadVoterTimeout is how long the leader must not have heard from a voter before it swaps
	// it for a caught-up learner (one joint change: the learner becomes a voter, the silent
	// voter a learner), so that a cluster that lost a voter and gained a replacement under
	// another name gets its fault tolerance back without waiting for `ctl node remove`. Only
	// with a learner ready; the voter count does not change. Default 1m.
	DeadVoterTimeout time.Duration
	// PeerTimeout is how long a peer stream may stay silent before it is taken for dead and
	// redialled: a half-open connection (the peer's machine gone, a path that drops packets
	// without a reset) is otherwise written into for as long as TCP retransmits. Both ends send
	// a keepalive every PeerTimeout/4 when they have nothing else to say. Default 5s.
	PeerTimeout time.Duration

	// TLSCertFile, TLSKeyFile and TLSCAFile turn on mutual TLS on the peer transport: every
	// member presents its certificate and verifies the peer's against the CA. All three or
	// none. The cluster token is checked as well.
	TLSCertFile, TLSKeyFile, TLSCAFile string
	// ServerTLS and ClientTLS, when both set, are the peer transport's mutual TLS
	// configurations as they are (the agent's, whose certificate renews itself). They take
	// precedence over the files.
	ServerTLS, ClientTLS *tls.Config
	// JoinClient sends the join request (a client that trusts the cluster CA when the members'
	// APIs speak TLS). Default: a plain client with a 15s timeout.
	JoinClient *http.Client

	// Seed, when set, is the state a node without state bootstraps its new one-node cluster
	// from (a restore, seed.go) instead of an empty store. Ignored when the data dir has state
	// or Join is set.
	Seed *Seed

	// Now is the clock for the time stamps the store writes (creation and deletion times).
	// Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		RaftAddress:      ":7481",
		JoinTimeout:      60 * time.Second,
		TickInterval:     100 * time.Millisecond,
		ElectionTicks:    10,
		HeartbeatTicks:   1,
		RequestTimeout:   10 * time.Second,
		SnapshotEntries:  10000,
		CatchUpEntries:   5000,
		HistorySize:      10000,
		ApplyCommitDelay: 100 * time.Millisecond,
		WALSegmentSize:   64 << 20,
		MaxVoters:        5,
		PromoteInterval:  time.Second,
		PeerTimeout:      5 * time.Second,
		DeadVoterTimeout: time.Minute,
		Now:              time.Now,
	}
}

func (c *Config) validate() error {
	d := DefaultConfig()
	if c.NodeName == "" {
		return errors.New("raftstore: node name is required")
	}
	if c.DataDir == "" {
		return errors.New("raftstore: data dir is required")
	}
	if c.ClusterToken == "" {
		return errors.New("raftstore: cluster token is required")
	}
	if c.RaftAddress == "" {
		c.RaftAddress = d.RaftAddress
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = d.JoinTimeout
	}
	if c.TickInterval <= 0 {
		c.TickInterval = d.TickInterval
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = d.ElectionTicks
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = d.HeartbeatTicks
	}
	if c.HeartbeatTicks >= c.ElectionTicks {
		return fmt.Errorf("raftstore: heartbeat ticks %d must be under election ticks %d", c.HeartbeatTicks, c.ElectionTicks)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = d.SnapshotEntries
	}
	if c.CatchUpEntries == 0 {
		c.CatchUpEntries = d.CatchUpEntries
	}
	if c.ApplyCommitDelay <= 0 {
		c.ApplyCommitDelay = d.ApplyCommitDelay
	}
	if c.WALSegmentSize <= 0 {
		c.WALSegmentSize = d.WALSegmentSize
	}
	if c.HistorySize <= 0 {
		c.HistorySize = d.HistorySize
	}
	if c.MaxVoters <= 0 {
		c.MaxVoters = d.MaxVoters
	}
	if c.MaxVoters%2 == 0 {
		return fmt.Errorf("raftstore: max voters %d must be odd", c.MaxVoters)
	}
	if c.PromoteInterval <= 0 {
		c.PromoteInterval = d.PromoteInterval
	}
	if c.DeadVoterTimeout <= 0 {
		c.DeadVoterTimeout = d.DeadVoterTimeout
	}
	if c.PeerTimeout <= 0 {
		c.PeerTimeout = d.PeerTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	n := 0
	for _, f := range []string{c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return errors.New("raftstore: mutual TLS needs a certificate, a key and a CA, or none of them")
	}
	return nil
}

// tlsConfigs loads the mutual TLS configuration of the transport, or nils when not configured.
func (c *Config) tlsConfigs() (server, client *tls.Config, err error) {
	if c.ServerTLS != nil && c.ClientTLS != nil {
		return c.ServerTLS, c.ClientTLS, nil
	}
	if c.TLSCertFile == "" {
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: load certificate: %w", err)
	}
	caPEM, err := os.ReadFile(c.TLSCAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("raftstore: no certificate in CA file %s", c.TLSCAFile)
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
		// Peers are dialled by address, and certificates name nodes, not addresses: verify
		// the chain against the cluster CA and nothing else.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, pool)
		},
	}
	return server, client, nil
}

func verifyChain(raw [][]byte, pool *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("raftstore: peer presented no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return fmt.Errorf("raftstore: parse peer certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("raftstore: verify peer certificate: %w", err)
	}
	return nil
}

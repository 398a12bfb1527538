package gossip

import (
	"fmt"
	"log"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/constellation-sh/constellation/pkg/observed"
)

// Node states as this package reports them in observed.Node.State. memberlist v0.7 does not
// expose its internal "suspect" state, so a node is alive until it is declared dead.
const (
	StateAlive      = observed.StateAlive
	StateDead       = observed.StateDead
	StateLeft       = observed.StateLeft
	StateRestarting = observed.StateRestarting
)

// Gossip is one agent's membership and observed-state gossip. Its methods are safe for
// concurrent use.
type Gossip struct {
	cfg     Config
	log     *slog.Logger
	set     *observed.Set
	metrics *metrics
	ml      *memberlist.Memberlist
	queue   *memberlist.TransmitLimitedQueue
	keys    *memberlist.Keyring // nil without encryption
	stop    chan struct{}
	done    chan struct{}
	syncCh  chan syncReq // nodes to exchange full state with

	shutdownOnce sync.Once
	reconnecting atomic.Bool
	syncing      atomic.Bool

	mu sync.Mutex
	// guarded by mu:
	state      *replicaState      // the replicas of every node, ourselves included, and their merge rules
	members    map[string]*member // what memberlist told us about each node
	leaving    bool
	restarting bool // with leaving: the departure is a restart (LeaveForRestart)
	// announced is the replica version last put in our metadata.
	announced digest
	restored  []observed.Replica   // taken over from the previous run's saved state
	images    map[string]*imageSet // each node's advertised image keys, ours included (images.go)
}

// member is what memberlist events told us about a node.
type member struct {
	node       observed.Node
	leaving    bool   // its last metadata announced a graceful leave
	restarting bool   // ... and that it is a restart, its containers running on
	digest     digest // its last announced replica digest
}

// New starts gossip on cfg.BindAddress (or cfg.Transport) and keeps cfg.Set up to date: the
// local node appears in it at once. Join others with Join; stop with Leave then Shutdown.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	set, reg := cfg.Set, cfg.Registerer
	logger := cfg.Logger.With("component", "gossip")
	g := &Gossip{
		cfg:     cfg,
		log:     logger,
		set:     set,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		syncCh:  make(chan syncReq, 256),
		state:   newReplicaState(cfg.NodeName, cfg.Clock.Now().UnixNano()),
		members: map[string]*member{},
		images:  map[string]*imageSet{},
	}
	if cfg.StateFile != "" {
		rs, err := loadSavedState(cfg.StateFile, cfg.NodeName, cfg.Clock.Now(), cfg.StateMaxAge)
		if err != nil {
			logger.Warn("ignoring the state saved by the previous run", "err", err)
		}
		g.restoreLocked(rs)
		if len(g.restored) > 0 {
			logger.Info("announcing the replicas the previous run saved", "replicas", len(g.restored))
			set.SetNodeReplicas(cfg.NodeName, g.state.live(cfg.NodeName))
		}
	}
	g.announced = g.state.local().digest() // what NodeMeta will say at start
	mc, err := g.memberlistConfig()
	if err != nil {
		return nil, err
	}
	g.keys = mc.Keyring
	if g.metrics, err = newMetrics(reg, g); err != nil {
		return nil, err
	}
	g.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return g.numMembers() },
		RetransmitMult: cfg.RetransmitMult,
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		g.metrics.unregister()
		return nil, fmt.Errorf("gossip: start memberlist on %s: %w", cfg.BindAddress, err)
	}
	g.mu.Lock()
	g.ml = ml
	g.mu.Unlock()
	g.log.Info("gossip started", "node", cfg.NodeName, "address", ml.LocalNode().Address(), "encrypted", !cfg.DisableEncryption)
	go g.loop()
	return g, nil
}

func (g *Gossip) memberlistConfig() (*memberlist.Config, error) {
	cfg := g.cfg
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.IndirectChecks = cfg.IndirectChecks
	mc.SuspicionMult = cfg.SuspicionMult
	mc.SuspicionMaxTimeoutMult = cfg.SuspicionMaxTimeoutMult
	mc.AwarenessMaxMultiplier = cfg.AwarenessMaxMultiplier
	mc.GossipInterval = cfg.GossipInterval
	mc.GossipNodes = cfg.GossipNodes
	mc.RetransmitMult = cfg.RetransmitMult
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = cfg.TCPTimeout
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.GossipToTheDeadTime = cfg.GossipToTheDeadTime
	mc.Delegate = (*delegate)(g)
	mc.Events = (*events)(g)
	mc.Logger = log.New(&logWriter{log: g.log}, "", 0)
	if !cfg.DisableEncryption {
		kr, err := memberlist.NewKeyring(cfg.ExtraKeys, cfg.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	if cfg.Transport != nil {
		// The transport knows where it listens; only an explicit address and port override it.
		mc.Transport = cfg.Transport
		mc.AdvertiseAddr, mc.AdvertisePort = "", 0
		if cfg.AdvertiseAddress != "" && cfg.AdvertisePort != 0 {
			ip, err := resolveIP(cfg.AdvertiseAddress)
			if err != nil {
				return nil, err
			}
			mc.AdvertiseAddr, mc.AdvertisePort = ip, cfg.AdvertisePort
		}
		return mc, nil
	}
	host, port, err := splitBind(cfg.BindAddress)
	if err != nil {
		return nil, fmt.Errorf("gossip: bind address %q: %w", cfg.BindAddress, err)
	}
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertisePort = port
	if cfg.AdvertisePort != 0 {
		mc.AdvertisePort = cfg.AdvertisePort
	}
	adv := cfg.AdvertiseAddress
	if adv == "" && host != "0.0.0.0" && host != "::" {
		adv = host
	}
	if adv != "" {
		ip, err := resolveIP(adv)
		if err != nil {
			return nil, err
		}
		mc.AdvertiseAddr = ip
	}
	return mc, nil
}

// Join contacts the given gossip addresses (host:port) and returns how many answered. A node
// that is alone keeps running; joining later is fine.
func (g *Gossip) Join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	n, err := g.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("gossip: join %v: %w", addrs, err)
	}
	return n, nil
}

// LocalAddress returns the gossip address (ip:port) other nodes reach this node at.
func (g *Gossip) LocalAddress() string { return g.ml.LocalNode().Address() }

// View returns the observed state this Gossip keeps up to date (the Set given to New).
func (g *Gossip) View() observed.View { return g.set }

// Members returns the nodes memberlist currently considers alive, ourselves included, sorted
// by name.
func (g *Gossip) Members() []observed.Node {
	ms := g.ml.Members()
	out := make([]observed.Node, 0, len(ms))
	for _, m := range ms {
		n, _, _ := g.nodeFromMember(m)
		n.Alive, n.State = true, StateAlive
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NumMembers returns how many nodes are alive, ourselves included.
func (g *Gossip) NumMembers() int { return g.numMembers() }

func (g *Gossip) numMembers() int {
	g.mu.Lock()
	ml := g.ml
	g.mu.Unlock()
	if ml == nil {
		return 1
	}
	return ml.NumMembers()
}

// HealthScore is Lifeguard's view of this node's own health: 0 is healthy; higher means it
// has been missing acks and has slowed its probing down.
func (g *Gossip) HealthScore() int { return g.ml.GetHealthScore() }

// SetLocalReplicas publishes the local node's replicas. Only changes since the last call are
// broadcast (UpdatedAt alone is not a change); replicas absent from rs are removed.
func (g *Gossip) SetLocalReplicas(rs []observed.Replica) {
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	ws := make([]wireReplica, 0, len(rs))
	for _, r := range rs {
		r.Node = g.cfg.NodeName
		ws = append(ws, g.fitLocked(toWire(r, 0)))
	}
	sent := g.state.setLocal(ws, now)
	epoch := g.state.epoch
	live := g.state.live(g.cfg.NodeName)
	g.mu.Unlock()

	var msgs []*broadcast
	for _, w := range sent {
		if b := g.encodeBroadcast(g.cfg.NodeName, epoch, w); b != nil {
			msgs = append(msgs, b)
		}
	}
	for _, b := range msgs {
		g.queue.QueueBroadcast(b)
	}
	g.metrics.broadcasts.Add(float64(len(msgs)))
	if len(msgs) > 0 {
		g.set.SetNodeReplicas(g.cfg.NodeName, live)
	}
}

// fitLocked truncates the free-text fields of w until its update message fits MaxMessageSize.
func (g *Gossip) fitLocked(w wireReplica) wireReplica {
	for range 4 {
		b, err := encodeUpdate(wireUpdate{Node: g.cfg.NodeName, Epoch: g.state.epoch, Entry: w})
		if err == nil && len(b) <= g.cfg.MaxMessageSize {
			return w
		}
		switch {
		case w.Message != "":
			w.Message = ""
		case len(w.Ports) > 0:
			w.Ports = nil
		default:
			w.Reason = ""
		}
	}
	return w
}

// encodeBroadcast encodes one entry as an update message, or returns nil (counted) when it
// cannot be sent.
func (g *Gossip) encodeBroadcast(node string, epoch int64, w wireReplica) *broadcast {
	b, err := encodeUpdate(wireUpdate{Node: node, Epoch: epoch, Entry: w})
	if err != nil || len(b) > g.cfg.MaxMessageSize {
		g.metrics.sendDropped.Inc()
		g.log.Warn("replica update too large to gossip", "node", node, "service", w.Service, "index", w.Index, "bytes", len(b))
		return nil
	}
	return &broadcast{name: node + "\x00" + w.Service + "\x00" + strconv.Itoa(int(w.Index)), msg: b}
}

// applyUpdate folds one remote update in; it reports whether it was new (and so worth
// re-broadcasting).
func (g *Gossip) applyUpdate(u wireUpdate) bool {
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	news := g.state.applyUpdate(u, now)
	var live []observed.Replica
	if news {
		live = g.state.live(u.Node)
	}
	g.mu.Unlock()
	if news {
		g.set.SetNodeReplicas(u.Node, live)
	}
	return news
}

// localState encodes everything we know for a push/pull. When it would exceed MaxStateSize,
// the other nodes' image sets are left out first (they are hints); when that is still too
// large, only our own replicas are sent (the rest still travels by broadcast and other
// exchanges).
func (g *Gossip) localState() []byte {
	g.mu.Lock()
	ws, self := g.state.fullState()
	var selfImages []wireImages
	ws.Images, selfImages = g.imagesForStateLocked()
	g.mu.Unlock()
	b, err := encodeState(ws)
	if err == nil && len(b) <= g.cfg.MaxStateSize {
		return b
	}
	if len(ws.Images) > len(selfImages) {
		ws.Images = selfImages
		if b, err = encodeState(ws); err == nil && len(b) <= g.cfg.MaxStateSize {
			g.log.Debug("full state too large with every node's image set, sending ours only", "limit", g.cfg.MaxStateSize)
			return b
		}
	}
	g.metrics.sendDropped.Inc()
	g.log.Warn("full state too large for push/pull, sending own replicas only", "bytes", len(b), "limit", g.cfg.MaxStateSize)
	b, err = encodeState(wireState{From: g.cfg.NodeName, Nodes: []wireNodeState{self}, Images: selfImages})
	if err != nil || len(b) > g.cfg.MaxStateSize {
		return nil
	}
	return b
}

// mergeState folds a remote full state in (the rules are replicaState's) and passes on by
// broadcast what was news to us, as if it had come by gossip: the periodic exchange repairs
// what the epidemic missed.
func (g *Gossip) mergeState(ws wireState, join bool) {
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	res := g.state.mergeState(ws, join, now)
	g.mu.Unlock()
	for _, u := range res.send {
		if b := g.encodeBroadcast(u.Node, u.Epoch, u.Entry); b != nil {
			g.queue.QueueBroadcast(b)
		}
	}
	for node, live := range res.changed {
		g.set.SetNodeReplicas(node, live)
	}
	g.mergeImages(ws.Images)
}

// Leave announces a graceful departure and waits up to timeout for it to spread. Other nodes
// mark this one "left" rather than "dead". Call Shutdown afterwards.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.mu.Lock()
	g.leaving = true
	g.mu.Unlock()
	// Tell the others first that this is a leave, through our metadata, so that they can tell
	// it from a death (memberlist reports both the same way).
	half := timeout / 2
	if err := g.ml.UpdateNode(half); err != nil {
		g.log.Debug("announce leave in metadata", "err", err)
	}
	if err := g.ml.Leave(timeout - half); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip at once, without telling anyone: to the others it looks like a crash
// unless Leave came first. It is safe to call more than once.
func (g *Gossip) Shutdown() error {
	var err error
	g.shutdownOnce.Do(func() {
		close(g.stop)
		<-g.done
		if e := g.ml.Shutdown(); e != nil {
			err = fmt.Errorf("gossip: shutdown: %w", e)
		}
		g.metrics.unregister()
	})
	return err
}

// nodeFromMember converts a memberlist node, decoding its metadata: it also returns the
// metadata (a graceful leave, a restart) and its replica digest.
func (g *Gossip) nodeFromMember(m *memberlist.Node) (observed.Node, nodeMeta, digest) {
	n := observed.Node{Name: m.Name, Gossip: net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))}
	meta, err := decodeMeta(m.Meta, memberlist.MetaMaxSize)
	if err != nil {
		if len(m.Meta) > 0 {
			g.metrics.dropped.WithLabelValues(dropReason(err)).Inc()
			g.log.Warn("dropped malformed node metadata", "node", m.Name, "err", err)
		}
		n.Advertise = m.Addr.String()
		return n, nodeMeta{}, digest{}
	}
	n.Advertise = meta.Advertise
	if n.Advertise == "" {
		n.Advertise = m.Addr.String()
	}
	n.API, n.Raft, n.Version, n.Labels = meta.API, meta.Raft, meta.Version, meta.Labels
	return n, meta, meta.Digest
}

// broadcast is one update message in the transmit queue. A newer update of the same replica
// replaces an older one still queued (memberlist.NamedBroadcast).
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*broadcast)
	return ok && ob.name == b.name
}
func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}

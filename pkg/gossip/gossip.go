package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"log/slog"
	"net"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

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
	epoch      int64                 // this process's epoch: replicas from an older one are stale
	nodes      map[string]*nodeState // replica state per node, ourselves included
	members    map[string]*member    // what memberlist told us about each node
	leaving    bool
	restarting bool // with leaving: the departure is a restart (LeaveForRestart)
	// announced is the replica version last put in our metadata.
	announced digest
	restored  []observed.Replica // taken over from the previous run's saved state
}

// digest summarises one node's replica state in its memberlist metadata: its epoch, its
// highest sequence number and a hash of its live entries. A node whose copy differs pulls the
// node's full state: that repairs what the broadcasts missed (a lost packet, an epidemic that
// died out) within DigestInterval plus one round trip, instead of waiting for the periodic
// push/pull.
type digest struct {
	Epoch int64  `json:"e,omitempty"`
	Seq   uint64 `json:"q,omitempty"`
	Hash  uint64 `json:"h,omitempty"`
}

func (st *nodeState) digest() digest {
	var h uint64
	for k, e := range st.entries {
		if e.Deleted {
			continue
		}
		f := fnv.New64a()
		f.Write([]byte(k.service))
		var b [12]byte
		binary.LittleEndian.PutUint32(b[:4], uint32(k.index))
		binary.LittleEndian.PutUint64(b[4:], e.Seq)
		f.Write(b[:])
		h ^= f.Sum64()
	}
	return digest{Epoch: st.epoch, Seq: st.seq, Hash: h}
}

// behind reports whether a node announcing d has replicas our copy st lacks.
func (st *nodeState) behind(d digest) bool {
	if d.Epoch == 0 {
		return false // an agent that does not announce digests
	}
	if st == nil || d.Epoch > st.epoch {
		return true
	}
	if d.Epoch < st.epoch || d.Seq < st.seq {
		return false
	}
	return d.Seq > st.seq || d.Hash != st.digest().Hash
}

// syncReq asks the loop for a full state exchange with a node, not before due, if it is still
// behind then.
type syncReq struct {
	node, addr string
	due        time.Time
}

// nodeState is what we know of one node's replicas: live entries and tombstones, each with the
// sequence number the node gave it, within one epoch (one run of the node's agent).
type nodeState struct {
	epoch   int64
	seq     uint64
	entries map[rkey]wireReplica
	deleted map[rkey]time.Time // tombstone → when we learnt of it, for garbage collection
}

type rkey struct {
	service string
	index   int32
}

// member is what memberlist events told us about a node.
type member struct {
	node       observed.Node
	leaving    bool   // its last metadata announced a graceful leave
	restarting bool   // ... and that it is a restart, its containers running on
	digest     digest // its last announced replica digest
}

func newNodeState(epoch int64) *nodeState {
	return &nodeState{epoch: epoch, entries: map[rkey]wireReplica{}, deleted: map[rkey]time.Time{}}
}

// New starts gossip on cfg.BindAddress (or cfg.Transport) and keeps set up to date: the local
// node appears in it at once. Join others with Join; stop with Leave then Shutdown. reg may be
// nil (no metrics registered).
func New(cfg Config, set *observed.Set, logger *slog.Logger, reg prometheus.Registerer) (*Gossip, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if set == nil {
		return nil, errors.New("gossip: nil observed set")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "gossip")
	g := &Gossip{
		cfg:     cfg,
		log:     logger,
		set:     set,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		syncCh:  make(chan syncReq, 256),
		epoch:   cfg.Now().UnixNano(),
		nodes:   map[string]*nodeState{},
		members: map[string]*member{},
	}
	g.nodes[cfg.NodeName] = newNodeState(g.epoch)
	if cfg.StateFile != "" {
		rs, err := loadSavedState(cfg.StateFile, cfg.NodeName, cfg.Now(), cfg.StateMaxAge)
		if err != nil {
			logger.Warn("ignoring the state saved by the previous run", "err", err)
		}
		g.restoreLocked(rs)
		if len(g.restored) > 0 {
			logger.Info("announcing the replicas the previous run saved", "replicas", len(g.restored))
			set.SetNodeReplicas(cfg.NodeName, liveReplicas(cfg.NodeName, g.nodes[cfg.NodeName]))
		}
	}
	g.announced = g.nodes[cfg.NodeName].digest() // what NodeMeta will say at start
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
	now := g.cfg.Now()
	var msgs []*broadcast
	g.mu.Lock()
	self := g.nodes[g.cfg.NodeName]
	seen := make(map[rkey]bool, len(rs))
	for _, r := range rs {
		r.Node = g.cfg.NodeName
		k := rkey{r.Service, r.Index}
		if seen[k] {
			continue // a duplicate key is a caller bug; the first wins
		}
		seen[k] = true
		w := g.fitLocked(toWire(r, 0))
		if old, ok := self.entries[k]; ok && !old.Deleted && sameReplica(old, w) {
			continue
		}
		self.seq++
		w.Seq = self.seq
		self.entries[k] = w
		delete(self.deleted, k)
		if b := g.broadcastLocked(g.cfg.NodeName, self.epoch, w); b != nil {
			msgs = append(msgs, b)
		}
	}
	for k, old := range self.entries {
		if old.Deleted || seen[k] {
			continue
		}
		self.seq++
		tomb := wireReplica{Seq: self.seq, Deleted: true, Service: k.service, Index: k.index}
		self.entries[k] = tomb
		self.deleted[k] = now
		if b := g.broadcastLocked(g.cfg.NodeName, self.epoch, tomb); b != nil {
			msgs = append(msgs, b)
		}
	}
	changed := len(msgs) > 0
	live := liveReplicas(g.cfg.NodeName, self)
	g.mu.Unlock()

	for _, b := range msgs {
		g.queue.QueueBroadcast(b)
	}
	g.metrics.broadcasts.Add(float64(len(msgs)))
	if changed {
		g.set.SetNodeReplicas(g.cfg.NodeName, live)
	}
}

// fitLocked truncates the free-text fields of w until its update message fits MaxMessageSize.
func (g *Gossip) fitLocked(w wireReplica) wireReplica {
	for range 4 {
		b, err := encodeUpdate(wireUpdate{Node: g.cfg.NodeName, Epoch: g.epoch, Entry: w})
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

// broadcastLocked encodes one entry as an update message, or returns nil (counted) when it
// cannot be sent.
func (g *Gossip) broadcastLocked(node string, epoch int64, w wireReplica) *broadcast {
	b, err := encodeUpdate(wireUpdate{Node: node, Epoch: epoch, Entry: w})
	if err != nil || len(b) > g.cfg.MaxMessageSize {
		g.metrics.sendDropped.Inc()
		g.log.Warn("replica update too large to gossip", "node", node, "service", w.Service, "index", w.Index, "bytes", len(b))
		return nil
	}
	return &broadcast{name: node + "\x00" + w.Service + "\x00" + strconv.Itoa(int(w.Index)), msg: b}
}

func sameReplica(a, b wireReplica) bool {
	a.Seq, b.Seq = 0, 0
	a.UpdatedAt, b.UpdatedAt = 0, 0
	if len(a.Ports) == 0 && len(b.Ports) == 0 {
		a.Ports, b.Ports = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func liveReplicas(node string, st *nodeState) []observed.Replica {
	out := make([]observed.Replica, 0, len(st.entries))
	for _, e := range st.entries {
		if !e.Deleted {
			out = append(out, fromWire(node, e))
		}
	}
	return out
}

// applyUpdate folds one remote update in; it reports whether it was new (and so worth
// re-broadcasting).
func (g *Gossip) applyUpdate(u wireUpdate) bool {
	if u.Node == g.cfg.NodeName {
		return false // we are the authority on our own replicas
	}
	g.mu.Lock()
	st := g.nodes[u.Node]
	switch {
	case st == nil || u.Epoch > st.epoch:
		st = newNodeState(u.Epoch)
		g.nodes[u.Node] = st
	case u.Epoch < st.epoch:
		g.mu.Unlock()
		return false
	}
	k := rkey{u.Entry.Service, u.Entry.Index}
	if cur, ok := st.entries[k]; ok && cur.Seq >= u.Entry.Seq {
		g.mu.Unlock()
		return false
	}
	g.putEntryLocked(st, k, u.Entry)
	live := liveReplicas(u.Node, st)
	g.mu.Unlock()
	g.set.SetNodeReplicas(u.Node, live)
	return true
}

func (g *Gossip) putEntryLocked(st *nodeState, k rkey, e wireReplica) {
	st.entries[k] = e
	if e.Deleted {
		st.deleted[k] = g.cfg.Now()
	} else {
		delete(st.deleted, k)
	}
	if e.Seq > st.seq {
		st.seq = e.Seq
	}
}

// localState encodes everything we know for a push/pull. When it would exceed MaxStateSize,
// only our own replicas are sent (the rest still travels by broadcast and other exchanges).
func (g *Gossip) localState() []byte {
	g.mu.Lock()
	ws := wireState{From: g.cfg.NodeName}
	var self wireNodeState
	names := make([]string, 0, len(g.nodes))
	for name := range g.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := g.nodes[name]
		ns := wireNodeState{Node: name, Epoch: st.epoch, Seq: st.seq, Entries: make([]wireReplica, 0, len(st.entries))}
		for _, e := range st.entries {
			ns.Entries = append(ns.Entries, e)
		}
		sort.Slice(ns.Entries, func(i, j int) bool { return ns.Entries[i].Seq < ns.Entries[j].Seq })
		if name == g.cfg.NodeName {
			self = ns
		}
		ws.Nodes = append(ws.Nodes, ns)
	}
	g.mu.Unlock()
	b, err := encodeState(ws)
	if err == nil && len(b) <= g.cfg.MaxStateSize {
		return b
	}
	g.metrics.sendDropped.Inc()
	g.log.Warn("full state too large for push/pull, sending own replicas only", "bytes", len(b), "limit", g.cfg.MaxStateSize)
	b, err = encodeState(wireState{From: g.cfg.NodeName, Nodes: []wireNodeState{self}})
	if err != nil || len(b) > g.cfg.MaxStateSize {
		return nil
	}
	return b
}

// mergeState folds a remote full state in. The sender is the authority on its own replicas: its
// own entry replaces ours when it is at least as recent. Entries it relays about third nodes
// are merged one by one by sequence number. What was news to us is passed on by broadcast, as
// if it had come by gossip: the periodic exchange repairs what the epidemic missed. During a
// join only the sender's own entries are passed on (the joiner learns the whole cluster's
// state at once and must not re-broadcast all of it).
func (g *Gossip) mergeState(ws wireState, join bool) {
	var rebroadcast []wireNodeState
	var relay []*broadcast
	changed := map[string][]observed.Replica{}
	g.mu.Lock()
	for _, ns := range ws.Nodes {
		if ns.Node == g.cfg.NodeName {
			if ns.Epoch > g.epoch {
				// Someone holds a newer epoch of ours (our clock went back across a restart):
				// move past it and announce everything again.
				self := g.nodes[g.cfg.NodeName]
				g.epoch = ns.Epoch + 1
				self.epoch = g.epoch
				rebroadcast = append(rebroadcast, wireNodeState{Node: g.cfg.NodeName})
			}
			continue
		}
		st := g.nodes[ns.Node]
		authoritative := ns.Node == ws.From
		switch {
		case st == nil || ns.Epoch > st.epoch || (authoritative && ns.Epoch == st.epoch && ns.Seq >= st.seq):
			if st != nil && st.epoch == ns.Epoch && equalEntries(st, ns) {
				continue
			}
			fresh := newNodeState(ns.Epoch)
			for _, e := range ns.Entries {
				k := rkey{e.Service, e.Index}
				g.putEntryLocked(fresh, k, e)
				if (authoritative || !join) && (st == nil || st.epoch != ns.Epoch || st.entries[k].Seq < e.Seq) {
					if b := g.broadcastLocked(ns.Node, ns.Epoch, e); b != nil {
						relay = append(relay, b)
					}
				}
			}
			fresh.seq = ns.Seq
			g.nodes[ns.Node] = fresh
			changed[ns.Node] = liveReplicas(ns.Node, fresh)
		case ns.Epoch == st.epoch:
			any := false
			for _, e := range ns.Entries {
				k := rkey{e.Service, e.Index}
				if cur, ok := st.entries[k]; ok && cur.Seq >= e.Seq {
					continue
				}
				g.putEntryLocked(st, k, e)
				any = true
				if authoritative || !join {
					if b := g.broadcastLocked(ns.Node, ns.Epoch, e); b != nil {
						relay = append(relay, b)
					}
				}
			}
			if any {
				changed[ns.Node] = liveReplicas(ns.Node, st)
			}
		}
	}
	var msgs []*broadcast
	if len(rebroadcast) > 0 {
		self := g.nodes[g.cfg.NodeName]
		for _, e := range self.entries {
			if b := g.broadcastLocked(g.cfg.NodeName, self.epoch, e); b != nil {
				msgs = append(msgs, b)
			}
		}
	}
	g.mu.Unlock()
	for _, b := range append(msgs, relay...) {
		g.queue.QueueBroadcast(b)
	}
	for node, live := range changed {
		g.set.SetNodeReplicas(node, live)
	}
}

func equalEntries(st *nodeState, ns wireNodeState) bool {
	if st.seq != ns.Seq || len(st.entries) != len(ns.Entries) {
		return false
	}
	for _, e := range ns.Entries {
		cur, ok := st.entries[rkey{e.Service, e.Index}]
		if !ok || cur.Seq != e.Seq {
			return false
		}
	}
	return true
}

// loop garbage-collects tombstones, exchanges full state with nodes that come back, and tries
// to reach dead (not departed) nodes again so that a healed partition merges even after
// memberlist has stopped gossiping to the dead.
func (g *Gossip) loop() {
	defer close(g.done)
	gc := time.NewTicker(min(g.cfg.TombstoneTTL/4, 30*time.Second))
	defer gc.Stop()
	announce := time.NewTicker(g.cfg.DigestInterval)
	defer announce.Stop()
	tick := time.NewTicker(g.cfg.DigestInterval / 4)
	defer tick.Stop()
	var reconnect <-chan time.Time
	if g.cfg.ReconnectInterval > 0 {
		t := time.NewTicker(g.cfg.ReconnectInterval)
		defer t.Stop()
		reconnect = t.C
	}
	pending := map[string]syncReq{}
	for {
		select {
		case <-g.stop:
			return
		case <-gc.C:
			g.collectTombstones()
			g.pruneDeparted()
		case <-announce.C:
			g.announce()
		case r := <-g.syncCh:
			if old, ok := pending[r.node]; ok && old.due.Before(r.due) {
				r.due = old.due
			}
			pending[r.node] = r
		case <-tick.C:
			g.runSyncs(pending)
		case <-reconnect:
			// Dials to a machine that is down can take TCPTimeout each: not in this loop.
			if g.reconnecting.CompareAndSwap(false, true) {
				go func() {
					defer g.reconnecting.Store(false)
					g.reconnect()
				}()
			}
		}
	}
}

// announce puts our current replica digest in our metadata when it changed. Memberlist
// spreads metadata with its own alive messages, at most once per DigestInterval here however
// fast replicas flap.
func (g *Gossip) announce() {
	g.mu.Lock()
	d := g.nodes[g.cfg.NodeName].digest()
	changed := d != g.announced
	if changed {
		g.announced = d
	}
	g.mu.Unlock()
	if changed {
		// The timeout only bounds the wait for the broadcast to leave; the update stands.
		_ = g.ml.UpdateNode(g.cfg.DigestInterval / 4)
	}
}

// runSyncs starts one due full state exchange (one at a time: each is a TCP round trip).
func (g *Gossip) runSyncs(pending map[string]syncReq) {
	now := g.cfg.Now()
	for name, r := range pending {
		if r.due.After(now) {
			continue
		}
		if !g.isBehind(name) {
			delete(pending, name) // the broadcasts caught up meanwhile
			continue
		}
		if !g.syncing.CompareAndSwap(false, true) {
			return
		}
		delete(pending, name)
		g.metrics.syncs.Inc()
		go func() {
			defer g.syncing.Store(false)
			select {
			case <-g.stop: // a push/pull after Shutdown would announce us alive again
				return
			default:
			}
			if _, err := g.ml.Join([]string{r.addr}); err != nil {
				g.log.Debug("full state exchange", "node", r.node, "address", r.addr, "err", err)
			}
		}()
		return
	}
}

func (g *Gossip) isBehind(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[name]
	return m != nil && m.node.Alive && g.nodes[name].behind(m.digest)
}

func (g *Gossip) reconnect() {
	cutoff := g.cfg.Now().Add(-g.cfg.ReconnectTimeout)
	var addrs []string
	g.mu.Lock()
	for _, m := range g.members {
		if m.node.State == StateDead && m.node.LastChange.After(cutoff) && m.node.Gossip != "" {
			addrs = append(addrs, m.node.Gossip)
		}
	}
	g.mu.Unlock()
	for _, a := range addrs {
		select {
		case <-g.stop:
			return
		default:
		}
		if _, err := g.ml.Join([]string{a}); err == nil {
			g.log.Info("reconnected to a node declared dead", "address", a)
		}
	}
}

func (g *Gossip) collectTombstones() {
	cutoff := g.cfg.Now().Add(-g.cfg.TombstoneTTL)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range g.nodes {
		for k, at := range st.deleted {
			if at.Before(cutoff) {
				delete(st.deleted, k)
				delete(st.entries, k)
			}
		}
	}
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

// Keys returns the installed encryption keys, the primary first.
func (g *Gossip) Keys() [][]byte {
	if g.keys == nil {
		return nil
	}
	return g.keys.GetKeys()
}

// InstallKey adds a key accepted for decryption on this node (first step of a rotation).
func (g *Gossip) InstallKey(k []byte) error {
	return g.keyring(func(kr *memberlist.Keyring) error { return kr.AddKey(k) })
}

// UseKey makes an installed key the primary one, used for encryption (second step).
func (g *Gossip) UseKey(k []byte) error {
	return g.keyring(func(kr *memberlist.Keyring) error { return kr.UseKey(k) })
}

// RemoveKey removes a key that is no longer primary (last step).
func (g *Gossip) RemoveKey(k []byte) error {
	return g.keyring(func(kr *memberlist.Keyring) error { return kr.RemoveKey(k) })
}

func (g *Gossip) keyring(f func(*memberlist.Keyring) error) error {
	if g.keys == nil {
		return errors.New("gossip: encryption is disabled")
	}
	if err := f(g.keys); err != nil {
		return fmt.Errorf("gossip: keyring: %w", err)
	}
	return nil
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

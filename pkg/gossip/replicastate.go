package gossip

import (
	"encoding/binary"
	"hash/fnv"
	"reflect"
	"sort"
	"time"

	"github.com/constellation-sh/constellation/pkg/observed"
)

// replicaState holds the merge rules of replica gossip, apart from memberlist: what this node
// knows of every node's replicas (its own included), and how a broadcast update, a full state
// from a push/pull, or a change of its own replicas is folded in. It is pure: it sends
// nothing, logs nothing and reads no clock (callers pass the time), so its rules are
// table-tested directly. It is not safe for concurrent use: Gossip guards it with its mutex.
//
// The rules:
//   - Each node's replicas live in one epoch (one run of its agent). An update or state of a
//     newer epoch replaces everything we knew of that node; one of an older epoch is ignored.
//   - Within an epoch every entry carries the sequence number its node gave it; an entry
//     replaces ours only when its number is higher.
//   - A removed replica is a tombstone (an entry with Deleted set), kept TombstoneTTL so that
//     a late copy of the live entry cannot bring it back.
//   - A node is the authority on its own replicas: in a full state from the node itself, its
//     entry set replaces ours when it is at least as recent (same epoch, Seq not lower). What
//     it relays about third nodes is merged entry by entry.
//   - Nobody is an authority on our own replicas but us: updates about ourselves are ignored,
//     except that a newer epoch of ours (our clock went back across a restart) moves our epoch
//     past it and re-announces every entry.
type replicaState struct {
	self  string                // this node's name
	epoch int64                 // this process's epoch: replicas from an older one are stale
	nodes map[string]*nodeState // replica state per node, ourselves included
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

func newNodeState(epoch int64) *nodeState {
	return &nodeState{epoch: epoch, entries: map[rkey]wireReplica{}, deleted: map[rkey]time.Time{}}
}

func newReplicaState(self string, epoch int64) *replicaState {
	s := &replicaState{self: self, epoch: epoch, nodes: map[string]*nodeState{}}
	s.nodes[self] = newNodeState(epoch)
	return s
}

// local returns this node's own state.
func (s *replicaState) local() *nodeState { return s.nodes[s.self] }

// setLocal makes ws (already fitted to the message size, keyed by service and index) this
// node's replicas at now. Entries that changed (UpdatedAt and Seq alone are no change) get the
// next sequence number; replicas absent from ws become tombstones. It returns the entries to
// broadcast, in the order they were numbered. A duplicate key in ws is a caller bug: the first
// wins.
func (s *replicaState) setLocal(ws []wireReplica, now time.Time) []wireReplica {
	self := s.local()
	var out []wireReplica
	seen := make(map[rkey]bool, len(ws))
	for _, w := range ws {
		k := rkey{w.Service, w.Index}
		if seen[k] {
			continue
		}
		seen[k] = true
		if old, ok := self.entries[k]; ok && !old.Deleted && sameReplica(old, w) {
			continue
		}
		self.seq++
		w.Seq = self.seq
		self.entries[k] = w
		delete(self.deleted, k)
		out = append(out, w)
	}
	for k, old := range self.entries {
		if old.Deleted || seen[k] {
			continue
		}
		self.seq++
		tomb := wireReplica{Seq: self.seq, Deleted: true, Service: k.service, Index: k.index}
		self.entries[k] = tomb
		self.deleted[k] = now
		out = append(out, tomb)
	}
	return out
}

// restore makes w one of this node's first replicas (taken over from a previous run's saved
// state), numbered next. It reports false for a key already present.
func (s *replicaState) restore(w wireReplica) bool {
	self := s.local()
	k := rkey{w.Service, w.Index}
	if _, dup := self.entries[k]; dup {
		return false
	}
	self.seq++
	w.Seq = self.seq
	self.entries[k] = w
	return true
}

// applyUpdate folds one broadcast update in at now; it reports whether it was news (and so
// worth re-broadcasting).
func (s *replicaState) applyUpdate(u wireUpdate, now time.Time) bool {
	if u.Node == s.self {
		return false // we are the authority on our own replicas
	}
	st := s.nodes[u.Node]
	switch {
	case st == nil || u.Epoch > st.epoch:
		st = newNodeState(u.Epoch)
		s.nodes[u.Node] = st
	case u.Epoch < st.epoch:
		return false
	}
	k := rkey{u.Entry.Service, u.Entry.Index}
	if cur, ok := st.entries[k]; ok && cur.Seq >= u.Entry.Seq {
		return false
	}
	st.put(k, u.Entry, now)
	return true
}

func (st *nodeState) put(k rkey, e wireReplica, now time.Time) {
	st.entries[k] = e
	if e.Deleted {
		st.deleted[k] = now
	} else {
		delete(st.deleted, k)
	}
	if e.Seq > st.seq {
		st.seq = e.Seq
	}
}

// mergeResult is what folding a full state in changed.
type mergeResult struct {
	// send holds the updates to broadcast, in order: first all of our own entries when our
	// epoch moved (see replicaState), then what was news to us, as if it had come by gossip.
	send []wireUpdate
	// changed holds the live replicas of every node whose replicas changed.
	changed map[string][]observed.Replica
}

// mergeState folds a remote full state in at now (see replicaState for the rules). During a
// join only the sender's own entries are passed on: the joiner learns the whole cluster's
// state at once and must not re-broadcast all of it.
func (s *replicaState) mergeState(ws wireState, join bool, now time.Time) mergeResult {
	res := mergeResult{changed: map[string][]observed.Replica{}}
	var relay []wireUpdate
	resend := false
	for _, ns := range ws.Nodes {
		if ns.Node == s.self {
			if ns.Epoch > s.epoch {
				// Someone holds a newer epoch of ours (our clock went back across a restart):
				// move past it and announce everything again.
				s.epoch = ns.Epoch + 1
				s.local().epoch = s.epoch
				resend = true
			}
			continue
		}
		st := s.nodes[ns.Node]
		authoritative := ns.Node == ws.From
		switch {
		case st == nil || ns.Epoch > st.epoch || (authoritative && ns.Epoch == st.epoch && ns.Seq >= st.seq):
			if st != nil && st.epoch == ns.Epoch && equalEntries(st, ns) {
				continue
			}
			fresh := newNodeState(ns.Epoch)
			for _, e := range ns.Entries {
				k := rkey{e.Service, e.Index}
				fresh.put(k, e, now)
				if (authoritative || !join) && (st == nil || st.epoch != ns.Epoch || st.entries[k].Seq < e.Seq) {
					relay = append(relay, wireUpdate{Node: ns.Node, Epoch: ns.Epoch, Entry: e})
				}
			}
			fresh.seq = ns.Seq
			s.nodes[ns.Node] = fresh
			res.changed[ns.Node] = liveReplicas(ns.Node, fresh)
		case ns.Epoch == st.epoch:
			any := false
			for _, e := range ns.Entries {
				k := rkey{e.Service, e.Index}
				if cur, ok := st.entries[k]; ok && cur.Seq >= e.Seq {
					continue
				}
				st.put(k, e, now)
				any = true
				if authoritative || !join {
					relay = append(relay, wireUpdate{Node: ns.Node, Epoch: ns.Epoch, Entry: e})
				}
			}
			if any {
				res.changed[ns.Node] = liveReplicas(ns.Node, st)
			}
		}
	}
	if resend {
		self := s.local()
		for _, e := range self.entries {
			res.send = append(res.send, wireUpdate{Node: s.self, Epoch: self.epoch, Entry: e})
		}
	}
	res.send = append(res.send, relay...)
	return res
}

// fullState is everything we know, for a push/pull, nodes sorted by name and each node's
// entries by sequence number; self is our own part of it, for when the whole does not fit.
func (s *replicaState) fullState() (all wireState, self wireNodeState) {
	all = wireState{From: s.self}
	names := make([]string, 0, len(s.nodes))
	for name := range s.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := s.nodes[name]
		ns := wireNodeState{Node: name, Epoch: st.epoch, Seq: st.seq, Entries: make([]wireReplica, 0, len(st.entries))}
		for _, e := range st.entries {
			ns.Entries = append(ns.Entries, e)
		}
		sort.Slice(ns.Entries, func(i, j int) bool { return ns.Entries[i].Seq < ns.Entries[j].Seq })
		if name == s.self {
			self = ns
		}
		all.Nodes = append(all.Nodes, ns)
	}
	return all, self
}

// collectTombstones drops the tombstones learnt before cutoff.
func (s *replicaState) collectTombstones(cutoff time.Time) {
	for _, st := range s.nodes {
		for k, at := range st.deleted {
			if at.Before(cutoff) {
				delete(st.deleted, k)
				delete(st.entries, k)
			}
		}
	}
}

// forget drops a node's replicas (never our own).
func (s *replicaState) forget(name string) {
	if name != s.self {
		delete(s.nodes, name)
	}
}

// live returns a node's live replicas (nil for a node we know nothing of).
func (s *replicaState) live(name string) []observed.Replica {
	st := s.nodes[name]
	if st == nil {
		return nil
	}
	return liveReplicas(name, st)
}

// behind reports whether a node announcing d has replicas our copy lacks.
func (s *replicaState) behind(name string, d digest) bool { return s.nodes[name].behind(d) }

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

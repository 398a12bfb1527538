package mongo

import (
	"fmt"
	"net"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Member states, as replSetGetStatus reports them (MongoDB manual, "Replica Set Member States").
const (
	StateStartup   = 0
	StatePrimary   = 1
	StateSecondary = 2
	StateDown      = 8
	StateRemoved   = 10
)

var stateStr = map[int]string{
	StateStartup: "STARTUP", StatePrimary: "PRIMARY", StateSecondary: "SECONDARY",
	StateDown: "(not reachable/healthy)", StateRemoved: "REMOVED",
}

// Set is one simulated replica set: the members started with the same --replSet name.
type Set struct {
	name string
	// Now is the set's clock (stepdown freezes); time.Now unless a test replaces it before use.
	Now func() time.Time

	mu sync.Mutex
	// Fields below are guarded by mu.
	members []*Member
	term    int64
	cut     map[[2]*Member]bool
	changed chan struct{} // closed and replaced whenever the simulated state changes
	log     []Call
	reqID   int32
	opcodes map[string]int
}

// Call is one replica set command a member received, for tests that check what a client did.
type Call struct {
	Member  string // the member's host
	Command string
	Force   bool
	// Version and Voters describe the config a replSetInitiate/replSetReconfig carried.
	Version int64
	Voters  []string
	// Code is the error code answered (0: success).
	Code int32
}

// NewSet makes an empty set named name (mongod's --replSet).
func NewSet(name string) *Set {
	return &Set{name: name, Now: time.Now, cut: map[[2]*Member]bool{}, changed: make(chan struct{}), opcodes: map[string]int{}}
}

// Requests counts the requests received by opcode and command ("OP_QUERY isMaster",
// "OP_MSG hello"), for tests that check what the driver sends.
func (s *Set) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.opcodes {
		out[k] = v
	}
	return out
}

// Member is one fake mongod. Host is its "host:port" as configs name it.
type Member struct {
	set  *Set
	Host string

	// Fields below are guarded by set.mu.
	ln          net.Listener
	addr        string
	up          bool
	cfg         *Config
	state       int
	frozenUntil time.Time
	installing  bool
	stalled     bool
	term        int64 // the election term this member has heard of
	electionID  bson.ObjectID
	conns       map[net.Conn]struct{}
	nextConnID  int32
}

// AddMember starts a member listening on a loopback port; host is the name configs use for it
// (the per-replica mesh name in Constellation).
func (s *Set) AddMember(host string) (*Member, error) {
	m := &Member{set: s, Host: host, conns: map[net.Conn]struct{}{}}
	if err := m.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.members = append(s.members, m)
	s.settleLocked()
	s.mu.Unlock()
	return m, nil
}

// Addr is the loopback address the member listens on (what a client dials).
func (m *Member) Addr() string {
	m.set.mu.Lock()
	defer m.set.mu.Unlock()
	return m.addr
}

// Stop kills the member: it closes its listener and connections, and peers see it down. Its
// config survives (it is on disk).
func (m *Member) Stop() {
	s := m.set
	s.mu.Lock()
	if !m.up {
		s.mu.Unlock()
		return
	}
	m.up = false
	ln := m.ln
	var conns []net.Conn
	for c := range m.conns {
		conns = append(conns, c)
	}
	if m.state == StatePrimary {
		m.state = StateSecondary
	}
	s.settleLocked()
	s.mu.Unlock()
	_ = ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Start restarts a stopped member on the same address.
func (m *Member) Start() error {
	m.set.mu.Lock()
	addr, up := m.addr, m.up
	m.set.mu.Unlock()
	if up {
		return nil
	}
	if err := m.listen(addr); err != nil {
		return err
	}
	m.set.mu.Lock()
	m.set.settleLocked()
	m.set.mu.Unlock()
	return nil
}

func (m *Member) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mongo fake %s: listen: %w", m.Host, err)
	}
	m.set.mu.Lock()
	m.ln, m.addr, m.up = ln, ln.Addr().String(), true
	if m.state == StatePrimary {
		m.state = StateSecondary
	}
	m.set.mu.Unlock()
	go m.serve(ln)
	return nil
}

// Close stops every member.
func (s *Set) Close() {
	s.mu.Lock()
	ms := append([]*Member(nil), s.members...)
	s.mu.Unlock()
	for _, m := range ms {
		m.Stop()
	}
}

// Partition cuts the network between a and b (both directions); clients still reach both.
func (s *Set) Partition(a, b *Member) {
	s.mu.Lock()
	s.cut[[2]*Member{a, b}], s.cut[[2]*Member{b, a}] = true, true
	s.settleLocked()
	s.mu.Unlock()
}

// Isolate cuts m from every other member.
func (s *Set) Isolate(m *Member) {
	s.mu.Lock()
	for _, o := range s.members {
		if o != m {
			s.cut[[2]*Member{m, o}], s.cut[[2]*Member{o, m}] = true, true
		}
	}
	s.settleLocked()
	s.mu.Unlock()
}

// Heal removes every partition.
func (s *Set) Heal() {
	s.mu.Lock()
	s.cut = map[[2]*Member]bool{}
	s.settleLocked()
	s.mu.Unlock()
}

// SetInstalling holds m in the state mongod is in while it installs a config in the background
// (after replSetInitiate, on a heartbeat-driven reconfig, on step-up): replSetReconfig answers
// ConfigurationInProgress until it is cleared.
func (m *Member) SetInstalling(on bool) {
	m.set.mu.Lock()
	m.installing = on
	m.set.mu.Unlock()
}

// StallConfigs makes m stop installing newer configs while it stays up and votes, as a member
// whose heartbeats lag or that is still in initial sync does: a config then cannot be committed
// until enough voters hold it.
func (m *Member) StallConfigs(on bool) {
	s := m.set
	s.mu.Lock()
	m.stalled = on
	s.settleLocked()
	s.mu.Unlock()
}

// Primary is the member that is primary, or nil.
func (s *Set) Primary() *Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.members {
		if m.up && m.state == StatePrimary {
			return m
		}
	}
	return nil
}

// Config is the config m holds (nil before it has one).
func (m *Member) Config() *Config {
	m.set.mu.Lock()
	defer m.set.mu.Unlock()
	return m.cfg.clone()
}

// Settle re-runs the simulation (after a stepdown freeze ran out on the set's clock).
func (s *Set) Settle() {
	s.mu.Lock()
	s.settleLocked()
	s.mu.Unlock()
}

// Term is the set's current election term.
func (s *Set) Term() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term
}

// Calls returns the replica set commands received so far.
func (s *Set) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.log...)
}

func (s *Set) reachLocked(a, b *Member) bool {
	return a == b || (a.up && b.up && !s.cut[[2]*Member{a, b}])
}

// settleLocked runs the simulation to a fixed point: configs spread between members that reach
// each other (heartbeats carry the newer config, and a member that learns it was removed goes
// REMOVED), a primary that no longer sees a majority of voters steps down, and an election
// makes the highest-priority electable voter that sees a majority primary, in a new term, with
// a priority takeover when a higher-priority member can win (MongoDB manual, "Replica Set
// Elections", "Member Priority").
func (s *Set) settleLocked() {
	defer func() {
		close(s.changed)
		s.changed = make(chan struct{})
	}()
	for changed := true; changed; {
		changed = false
		for _, m := range s.members {
			if !m.up || m.stalled {
				continue
			}
			for _, p := range s.members {
				if p != m && s.reachLocked(m, p) && p.term > m.term {
					m.term = p.term
					changed = true
				}
				if p == m || !s.reachLocked(m, p) || p.cfg == nil || !p.cfg.newerThan(m.cfg) {
					continue
				}
				if _, ok := p.cfg.member(m.Host); !ok {
					if _, knew := m.cfg.member(p.Host); !knew {
						continue
					}
				}
				m.cfg = p.cfg.clone()
				changed = true
			}
		}
	}
	now := s.Now()
	var primary *Member
	for _, m := range s.members {
		switch {
		case m.cfg == nil:
			m.state = StateStartup
		case !isMember(m):
			m.state = StateRemoved
		case m.state == StatePrimary && (!m.up || !s.canLeadLocked(m)):
			m.state = StateSecondary
		case m.state == StatePrimary:
			primary = m
		default:
			m.state = StateSecondary
		}
	}
	var best *Member
	for _, m := range s.members {
		if m == primary || !m.up || m.state != StateSecondary || now.Before(m.frozenUntil) || !s.canLeadLocked(m) {
			continue
		}
		if s.staleLocked(m) {
			continue
		}
		me, _ := m.cfg.member(m.Host)
		if best == nil {
			best = m
			continue
		}
		bm, _ := best.cfg.member(best.Host)
		if me.Priority > bm.Priority || (me.Priority == bm.Priority && me.ID < bm.ID) {
			best = m
		}
	}
	if best == nil {
		return
	}
	if primary != nil {
		pm, _ := primary.cfg.member(primary.Host)
		bm, _ := best.cfg.member(best.Host)
		if bm.Priority <= pm.Priority || !s.reachLocked(primary, best) {
			return
		}
		primary.state = StateSecondary
	}
	s.term++
	best.state = StatePrimary
	best.electionID = bson.NewObjectID()
	for _, m := range s.members {
		if s.reachLocked(best, m) {
			m.term = s.term
		}
	}
	// A new primary rewrites its config in its own term, version unchanged (the config term,
	// MongoDB 4.4+; a force-reconfigured config's term -1 is replaced the same way).
	c := best.cfg.clone()
	c.Term = s.term
	best.cfg = c
	s.settleConfigsLocked()
}

// settleConfigsLocked spreads configs again after an election rewrote the primary's.
func (s *Set) settleConfigsLocked() {
	for changed := true; changed; {
		changed = false
		for _, m := range s.members {
			for _, p := range s.members {
				if p != m && m.up && !m.stalled && s.reachLocked(m, p) && p.cfg.newerThan(m.cfg) {
					if _, ok := p.cfg.member(m.Host); ok {
						m.cfg = p.cfg.clone()
						changed = true
					}
				}
			}
		}
	}
}

func isMember(m *Member) bool {
	_, ok := m.cfg.member(m.Host)
	return ok
}

// canLeadLocked: m is an electable voter in its own config and reaches a majority of its voters.
func (s *Set) canLeadLocked(m *Member) bool {
	me, ok := m.cfg.member(m.Host)
	if !ok || me.Votes != 1 || me.Priority <= 0 || me.ArbiterOnly {
		return false
	}
	n := 0
	for _, h := range m.cfg.Voters() {
		if p := s.byHostLocked(h); p != nil && s.reachLocked(m, p) {
			n++
		}
	}
	return n >= m.cfg.majority()
}

// staleLocked: some reachable voter holds a newer config than m (it would not vote for m).
func (s *Set) staleLocked(m *Member) bool {
	for _, p := range s.members {
		if p != m && s.reachLocked(m, p) && p.cfg.newerThan(m.cfg) {
			return true
		}
	}
	return false
}

func (s *Set) byHostLocked(host string) *Member {
	for _, m := range s.members {
		if m.Host == host {
			return m
		}
	}
	return nil
}

// committedLocked: a majority of cfg's voters hold cfg (same version and term) or a newer one
// (a new primary's rewrite in its term). This is the
// first condition of mongod's config commitment; the fake has no oplog, so the second (writes
// of the previous config majority-committed in this one) always holds.
func (s *Set) committedLocked(cfg *Config) bool {
	n := 0
	for _, h := range cfg.Voters() {
		if p := s.byHostLocked(h); p != nil && p.up && (p.cfg.sameVersion(cfg) || p.cfg.newerThan(cfg)) {
			n++
		}
	}
	return n >= cfg.majority()
}

// waitLocked waits, with mu released, until cond holds or the deadline passes.
func (s *Set) waitLocked(deadline time.Time, cond func() bool) bool {
	for !cond() {
		ch := s.changed
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return false
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
		}
		s.mu.Lock()
	}
	return true
}

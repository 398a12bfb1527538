package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// Reasons of the Ready condition.
const (
	ReasonConverged        v1.ConditionReason = "Converged"
	ReasonInitiating       v1.ConditionReason = "Initiating"
	ReasonNotInitiated     v1.ConditionReason = "NotInitiated"
	ReasonReconfiguring    v1.ConditionReason = "Reconfiguring"
	ReasonWaitingForCommit v1.ConditionReason = "WaitingForCommit"
	ReasonNoPrimary        v1.ConditionReason = "NoPrimary"
	ReasonMajorityLost     v1.ConditionReason = "MajorityLost"
	ReasonForcedReconfig   v1.ConditionReason = "ForcedReconfig"
	ReasonMembersPending   v1.ConditionReason = "MembersPending"
	ReasonConfigRejected   v1.ConditionReason = "ConfigRejected"
	ReasonUnreachable      v1.ConditionReason = "Unreachable"
)

// Member roles and health in status.members.
const (
	RolePrimary     = "primary"
	RoleSecondary   = "secondary"
	RoleNotMember   = "notMember"   // desired, not (yet) in the config
	RoleUnreachable = "unreachable" // in the config, no member sees it
	RoleUnknown     = "unknown"

	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthUnknown   = "unknown"
)

// Engine is the mongo engine for one ReplicaSet object.
type Engine struct {
	name    string
	log     *slog.Logger
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout time.Duration

	mu sync.Mutex
	// clients are by Dial address; guarded by mu.
	clients map[string]*mongodrv.Client
	// known are members of earlier Desireds by config host, so the engine can still reach a
	// member that is no longer desired but still in the config (to step it down); guarded by mu.
	known map[string]replicaset.Member
}

var _ replicaset.Engine = (*Engine)(nil)

// NewEngine makes the engine; it connects lazily.
func NewEngine(opts replicaset.Options) (replicaset.Engine, error) {
	e := &Engine{name: opts.Name, log: opts.Logger, dial: opts.Dial, timeout: opts.Timeout, clients: map[string]*mongodrv.Client{}, known: map[string]replicaset.Member{}}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("replicaset", opts.Name, "engine", "mongo")
	if e.timeout <= 0 {
		e.timeout = 2 * time.Second
	}
	if e.dial == nil {
		var d net.Dialer
		e.dial = d.DialContext
	}
	return e, nil
}

type dialer struct {
	f func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (d dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d.f(ctx, network, addr)
}

// Close disconnects every member client.
func (e *Engine) Close() error {
	e.mu.Lock()
	cs := e.clients
	e.clients = map[string]*mongodrv.Client{}
	e.mu.Unlock()
	var errs []error
	for _, c := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		errs = append(errs, c.Disconnect(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

func (e *Engine) client(m replicaset.Member) (*mongodrv.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[m.Dial]; ok {
		return c, nil
	}
	opts := options.Client().SetHosts([]string{m.Dial}).SetDirect(true).
		SetDialer(dialer{e.dial}).SetAppName("constellation-replicaset").
		SetServerSelectionTimeout(e.timeout).SetConnectTimeout(e.timeout).
		SetHeartbeatInterval(5 * time.Second).SetMaxPoolSize(4).SetRetryReads(false).SetRetryWrites(false)
	c, err := mongodrv.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect %s at %s: %w", m.Name, m.Dial, err)
	}
	e.clients[m.Dial] = c
	return c, nil
}

// forget disconnects clients of members no longer desired.
func (e *Engine) forget(members []replicaset.Member) {
	keep := map[string]bool{}
	for _, m := range members {
		keep[m.Dial] = true
	}
	e.mu.Lock()
	var drop []*mongodrv.Client
	for addr, c := range e.clients {
		if !keep[addr] {
			drop = append(drop, c)
			delete(e.clients, addr)
		}
	}
	e.mu.Unlock()
	for _, c := range drop {
		ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
		_ = c.Disconnect(ctx)
		cancel()
	}
}

// run sends one admin command to a member, bounded by the engine's timeout (plus extra).
func (e *Engine) run(ctx context.Context, m replicaset.Member, extra time.Duration, cmd bson.D, out any) error {
	c, err := e.client(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout+extra)
	defer cancel()
	res := c.Database("admin").RunCommand(ctx, cmd)
	if out == nil {
		return res.Err()
	}
	return res.Decode(out)
}

type helloReply struct {
	IsWritablePrimary bool   `bson:"isWritablePrimary"`
	Secondary         bool   `bson:"secondary"`
	SetName           string `bson:"setName"`
	SetVersion        int64  `bson:"setVersion"`
	Primary           string `bson:"primary"`
	Me                string `bson:"me"`
	IsReplicaSet      bool   `bson:"isreplicaset"`
}

type statusMember struct {
	ID            int64   `bson:"_id"`
	Name          string  `bson:"name"`
	Health        float64 `bson:"health"`
	State         int     `bson:"state"`
	StateStr      string  `bson:"stateStr"`
	ConfigVersion int64   `bson:"configVersion"`
	ConfigTerm    int64   `bson:"configTerm"`
	Self          bool    `bson:"self"`
}

type statusReply struct {
	Set     string         `bson:"set"`
	MyState int            `bson:"myState"`
	Term    int64          `bson:"term"`
	Members []statusMember `bson:"members"`
}

// probe is what one member answered.
type probe struct {
	m         replicaset.Member
	helloErr  error
	hello     helloReply
	statusErr error
	status    *statusReply
}

func (p *probe) reachable() bool { return p.helloErr == nil }

func (p *probe) initiated(set string) bool { return p.reachable() && p.hello.SetName == set }

func (e *Engine) probeAll(ctx context.Context, members []replicaset.Member) []*probe {
	ps := make([]*probe, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		ps[i] = &probe{m: m}
		wg.Add(1)
		go func(p *probe) {
			defer wg.Done()
			p.helloErr = e.run(ctx, p.m, 0, bson.D{{Key: "hello", Value: 1}}, &p.hello)
			if p.helloErr != nil {
				return
			}
			// A member in a config answers with its own config host: if the address led to
			// another member, nothing it says is about this one.
			if p.hello.Me != "" && p.hello.Me != hostOf(p.m) {
				p.helloErr = fmt.Errorf("%w: %s at %s answers as %q", ErrUnreachable, p.m.Name, p.m.Dial, p.hello.Me)
				p.hello = helloReply{}
				return
			}
			var st statusReply
			if p.statusErr = e.run(ctx, p.m, 0, bson.D{{Key: "replSetGetStatus", Value: 1}}, &st); p.statusErr == nil {
				p.status = &st
			}
		}(ps[i])
	}
	wg.Wait()
	return ps
}

// hostOf is the name a member has in the config.
func hostOf(m replicaset.Member) string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

func serviceOf(m replicaset.Member) string {
	return strings.TrimSuffix(m.Name, "-"+strconv.Itoa(m.Index))
}

func targetsOf(d replicaset.Desired, spec *v1.MongoReplicaSet) []Target {
	ts := make([]Target, 0, len(d.Members))
	for _, m := range d.Members {
		p := 1.0
		if v, ok := spec.Priorities[serviceOf(m)]; ok {
			p = v
		}
		ts = append(ts, Target{Name: m.Name, Host: hostOf(m), Priority: p, Ready: m.Ready})
	}
	return ts
}

// step carries one Reconcile's working state.
type step struct {
	e      *Engine
	d      replicaset.Desired
	spec   *v1.MongoReplicaSet
	obs    replicaset.Observation
	probes []*probe // the desired members, in Desired order
	extra  []*probe // members no longer desired that are still in the config
	byHost map[string]*probe
	names  map[string]string // host -> member name
}

func (s *step) ready(status v1.ConditionStatus, reason v1.ConditionReason, format string, a ...any) {
	s.obs.Conditions = []v1.Condition{{Type: v1.ReplicaSetReady, Status: status, Reason: reason,
		Message: fmt.Sprintf(format, a...), LastTransitionTime: s.d.Now}}
}

func (s *step) act(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	s.obs.Actions = append(s.obs.Actions, line)
	s.e.log.Info("replica set step", "action", line)
}

// nameOf maps a config host to a member name; hosts of members no longer desired map to their
// first DNS label ("db-3.db:27017" -> "db-3"), which is the replica name under mesh naming.
func (s *step) nameOf(host string) string {
	if n, ok := s.names[host]; ok {
		return n
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	n, _, _ := strings.Cut(h, ".")
	return n
}

// Reconcile moves the replica set one step toward d. The Observation is filled even when an
// error is returned; errors are for what the next Reconcile will not get past on its own.
func (e *Engine) Reconcile(ctx context.Context, d replicaset.Desired) (replicaset.Observation, error) {
	if d.ReplicaSet == nil || d.ReplicaSet.Spec.Mongo == nil {
		return replicaset.Observation{}, errors.New("mongo engine: spec.mongo is required")
	}
	s := &step{e: e, d: d, spec: d.ReplicaSet.Spec.Mongo, byHost: map[string]*probe{}, names: map[string]string{}}
	s.probes = e.probeAll(ctx, d.Members)
	for _, p := range s.probes {
		s.byHost[hostOf(p.m)] = p
		s.names[hostOf(p.m)] = p.m.Name
	}
	// Members still in the config but no longer desired: probe them too while the engine
	// remembers where they are.
	var leaving []replicaset.Member
	e.mu.Lock()
	if view := s.bestView(); view != nil {
		for _, vm := range view.Members {
			if m, ok := e.known[vm.Name]; ok && s.byHost[vm.Name] == nil {
				leaving = append(leaving, m)
			}
		}
	}
	e.known = map[string]replicaset.Member{}
	for _, m := range append(append([]replicaset.Member(nil), d.Members...), leaving...) {
		e.known[hostOf(m)] = m
	}
	e.mu.Unlock()
	for _, p := range e.probeAll(ctx, leaving) {
		s.byHost[hostOf(p.m)] = p
		s.names[hostOf(p.m)] = p.m.Name
		s.extra = append(s.extra, p)
	}
	defer e.forget(append(append([]replicaset.Member(nil), d.Members...), leaving...))
	err := s.reconcile(ctx)
	if err != nil {
		e.log.Warn("replica set step failed", "err", err)
	}
	return s.obs, err
}

func (s *step) reconcile(ctx context.Context) error {
	set := s.spec.ReplSetName
	initiated := false
	for _, p := range s.probes {
		if p.initiated(set) || p.status != nil {
			initiated = true
		}
	}
	if !initiated {
		s.fillMembers(nil, "")
		return s.initiate(ctx)
	}
	view := s.bestView()
	statusPrimary := ""
	if view != nil {
		for _, m := range view.Members {
			if m.State == 1 {
				statusPrimary = m.Name
			}
		}
	}
	var selfPrimaries []string
	for _, p := range append(append([]*probe(nil), s.probes...), s.extra...) {
		if p.initiated(set) && p.hello.IsWritablePrimary {
			selfPrimaries = append(selfPrimaries, hostOf(p.m))
		}
	}
	agreed := statusPrimary != "" && len(selfPrimaries) == 1 && selfPrimaries[0] == statusPrimary
	if statusPrimary != "" {
		s.obs.Primary = s.nameOf(statusPrimary)
	} else if len(selfPrimaries) == 1 {
		s.obs.Primary = s.nameOf(selfPrimaries[0])
	}
	s.obs.PrimaryAgreed = agreed
	s.fillMembers(view, statusPrimary)
	if !agreed {
		return s.noPrimary(ctx, statusPrimary, selfPrimaries)
	}
	pv := view
	if pp := s.byHost[statusPrimary]; pp != nil && pp.status != nil {
		pv = pp.status
	}
	return s.converge(ctx, s.byHost[statusPrimary], pv)
}

// bestView is the replSetGetStatus with the highest term among the members that answered.
// Of equal terms, a view that shows a primary wins.
func (s *step) bestView() *statusReply {
	var best *statusReply
	hasPrimary := func(st *statusReply) bool {
		for _, m := range st.Members {
			if m.State == 1 {
				return true
			}
		}
		return false
	}
	for _, p := range append(append([]*probe(nil), s.probes...), s.extra...) {
		st := p.status
		if st == nil || st.Set != s.spec.ReplSetName {
			continue
		}
		if best == nil || st.Term > best.Term || (st.Term == best.Term && hasPrimary(st) && !hasPrimary(best)) {
			best = st
		}
	}
	return best
}

func (s *step) fillMembers(view *statusReply, primary string) {
	inView := map[string]statusMember{}
	if view != nil {
		for _, m := range view.Members {
			inView[m.Name] = m
		}
	}
	s.obs.Members = make([]v1.MemberStatus, len(s.d.Members))
	for i, m := range s.d.Members {
		ms := v1.MemberStatus{Name: m.Name, Role: RoleUnknown, Health: HealthUnknown}
		host := hostOf(m)
		p := s.byHost[host]
		if vm, ok := inView[host]; ok {
			switch {
			case vm.Health == 0:
				ms.Role, ms.Health = RoleUnreachable, HealthUnhealthy
			case host == primary:
				ms.Role, ms.Health = RolePrimary, HealthHealthy
			default:
				ms.Role, ms.Health = strings.ToLower(vm.StateStr), HealthHealthy
				if vm.State != 2 {
					ms.Health = HealthUnhealthy
				}
			}
		} else if view != nil {
			ms.Role = RoleNotMember
			if p != nil && p.reachable() {
				ms.Health = HealthHealthy
			} else {
				ms.Health = HealthUnhealthy
			}
		} else if p != nil && !p.reachable() {
			ms.Health = HealthUnhealthy
		}
		s.obs.Members[i] = ms
	}
}

// initiate runs replSetInitiate on the index-0 member with itself as the only member.
func (s *step) initiate(ctx context.Context) error {
	var first *probe
	for _, p := range s.probes {
		if p.m.Index == 0 {
			first = p
			break
		}
	}
	if first == nil {
		s.ready(v1.ConditionFalse, ReasonInitiating, "no member with index 0 to initiate the replica set on")
		return nil
	}
	if s.d.LastPrimary != "" {
		// A set that had a primary and now shows no config anywhere lost its members' data or is
		// unreachable; initiating again would fork it.
		s.ready(v1.ConditionFalse, ReasonNotInitiated, "no member answers with a replica set config, but %s was primary before; not initiating a new set over it", s.d.LastPrimary)
		return nil
	}
	if !first.reachable() {
		s.ready(v1.ConditionFalse, ReasonInitiating, "waiting for %s to answer before replSetInitiate: %v", first.m.Name, first.helloErr)
		return nil
	}
	if first.hello.SetName != "" || !first.hello.IsReplicaSet {
		s.ready(v1.ConditionFalse, ReasonConfigRejected, "%s answers setName %q, isreplicaset %v: not a member started with --replSet %s", first.m.Name, first.hello.SetName, first.hello.IsReplicaSet, s.spec.ReplSetName)
		return fmt.Errorf("replicasets/%s: %s is not an uninitialized member of replica set %q", s.e.name, first.m.Name, s.spec.ReplSetName)
	}
	prio := 1.0
	if v, ok := s.spec.Priorities[serviceOf(first.m)]; ok && v > 0 {
		prio = v
	}
	cfg := bson.D{{Key: "_id", Value: s.spec.ReplSetName}, {Key: "version", Value: int32(1)},
		{Key: "members", Value: bson.A{bson.D{{Key: "_id", Value: int32(0)}, {Key: "host", Value: hostOf(first.m)},
			{Key: "priority", Value: prio}, {Key: "votes", Value: int32(1)}}}}}
	err := s.e.run(ctx, first.m, 0, bson.D{{Key: "replSetInitiate", Value: cfg}}, nil)
	switch {
	case err == nil:
		s.act("replSetInitiate on %s", first.m.Name)
	case serverCode(err) == codeAlreadyInitialized:
		s.e.log.Info("replSetInitiate: already initialized", "member", first.m.Name)
	default:
		werr, transient := classify(err)
		s.ready(v1.ConditionFalse, ReasonInitiating, "replSetInitiate on %s: %v", first.m.Name, werr)
		if transient {
			return nil
		}
		return fmt.Errorf("replicasets/%s: replSetInitiate on %s: %w", s.e.name, first.m.Name, werr)
	}
	s.ready(v1.ConditionFalse, ReasonInitiating, "replica set %s initiated on %s; waiting for it to become primary", s.spec.ReplSetName, first.m.Name)
	return nil
}

// rawConfig is a config as replSetGetConfig returns it, kept whole so fields the engine does not
// manage (settings, tags) survive a reconfig.
type rawConfig struct {
	doc     bson.D
	version int64
	term    int64
	members []ConfigMember
}

func (s *step) getConfig(ctx context.Context, m replicaset.Member) (*rawConfig, error) {
	var out struct {
		Config bson.Raw `bson:"config"`
	}
	if err := s.e.run(ctx, m, 0, bson.D{{Key: "replSetGetConfig", Value: 1}}, &out); err != nil {
		return nil, err
	}
	var doc bson.D
	if err := bson.Unmarshal(out.Config, &doc); err != nil {
		return nil, fmt.Errorf("replSetGetConfig from %s: %w", m.Name, err)
	}
	var parsed struct {
		Version int64 `bson:"version"`
		Term    int64 `bson:"term"`
		Members []struct {
			ID       int64    `bson:"_id"`
			Host     string   `bson:"host"`
			Votes    *int64   `bson:"votes"`
			Priority *float64 `bson:"priority"`
		} `bson:"members"`
	}
	if err := bson.Unmarshal(out.Config, &parsed); err != nil {
		return nil, fmt.Errorf("replSetGetConfig from %s: %w", m.Name, err)
	}
	rc := &rawConfig{doc: doc, version: parsed.Version, term: parsed.Term}
	for _, pm := range parsed.Members {
		cm := ConfigMember{ID: pm.ID, Host: pm.Host, Votes: 1, Priority: 1}
		if pm.Votes != nil {
			cm.Votes = *pm.Votes
		}
		if pm.Priority != nil {
			cm.Priority = *pm.Priority
		}
		rc.members = append(rc.members, cm)
	}
	return rc, nil
}

// withMembers is the config document with members replaced, the version raised by one and
// term dropped (the primary sets it).
func (rc *rawConfig) withMembers(members []ConfigMember) bson.D {
	var memberDocs []bson.D
	if v, ok := lookup(rc.doc, "members"); ok {
		if arr, ok := v.(bson.A); ok {
			for _, x := range arr {
				if md, ok := x.(bson.D); ok {
					memberDocs = append(memberDocs, md)
				}
			}
		}
	}
	byHost := map[string]bson.D{}
	for _, md := range memberDocs {
		if h, ok := lookup(md, "host"); ok {
			if hs, ok := h.(string); ok {
				byHost[hs] = md
			}
		}
	}
	var out bson.A
	for _, m := range members {
		md, ok := byHost[m.Host]
		if !ok {
			md = bson.D{{Key: "_id", Value: int32(m.ID)}, {Key: "host", Value: m.Host}}
		}
		md = set(set(unset(md, "newlyAdded"), "priority", m.Priority), "votes", int32(m.Votes))
		out = append(out, md)
	}
	d := set(unset(rc.doc, "term"), "members", out)
	return set(d, "version", int32(rc.version+1))
}

func lookup(d bson.D, key string) (any, bool) {
	for _, e := range d {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

func set(d bson.D, key string, v any) bson.D {
	out := make(bson.D, 0, len(d)+1)
	found := false
	for _, e := range d {
		if e.Key == key {
			e.Value, found = v, true
		}
		out = append(out, e)
	}
	if !found {
		out = append(out, bson.E{Key: key, Value: v})
	}
	return out
}

func unset(d bson.D, key string) bson.D {
	out := make(bson.D, 0, len(d))
	for _, e := range d {
		if e.Key != key {
			out = append(out, e)
		}
	}
	return out
}

// committed: a majority of the config's voters report holding it (replSetGetStatus
// members[].configVersion/configTerm), the engine's own check before the next reconfig; mongod
// checks it again itself (CurrentConfigNotCommittedYet).
func committed(cfg *rawConfig, view *statusReply) (bool, int, int) {
	voters := map[string]bool{}
	for _, m := range cfg.members {
		if m.Votes == 1 {
			voters[m.Host] = true
		}
	}
	have := 0
	for _, m := range view.Members {
		if voters[m.Name] && m.Health == 1 && m.ConfigVersion == cfg.version && m.ConfigTerm == cfg.term {
			have++
		}
	}
	need := len(voters)/2 + 1
	return have >= need, have, need
}

// converge takes one step on the agreed primary.
func (s *step) converge(ctx context.Context, primary *probe, view *statusReply) error {
	cfg, err := s.getConfig(ctx, primary.m)
	if err != nil {
		werr, transient := classify(err)
		s.ready(v1.ConditionFalse, ReasonUnreachable, "replSetGetConfig on %s: %v", primary.m.Name, werr)
		if transient {
			return nil
		}
		return fmt.Errorf("replicasets/%s: replSetGetConfig on %s: %w", s.e.name, primary.m.Name, werr)
	}
	if ok, have, need := committed(cfg, view); !ok {
		s.ready(v1.ConditionFalse, ReasonWaitingForCommit, "config version %d term %d held by %d of the %d voters needed", cfg.version, cfg.term, have, need)
		return nil
	}
	targets := targetsOf(s.d, s.spec)
	st := Plan(cfg.members, targets, hostOf(primary.m))
	switch st.Kind {
	case StepNone:
		s.converged(cfg)
		return nil
	case StepStepDown:
		return s.stepDown(ctx, primary, st)
	}
	next := applyStep(cfg.members, st)
	doc := cfg.withMembers(next)
	cmd := bson.D{{Key: "replSetReconfig", Value: doc}, {Key: "maxTimeMS", Value: s.e.timeout.Milliseconds()}}
	err = s.e.run(ctx, primary.m, time.Second, cmd, nil)
	what := fmt.Sprintf("replSetReconfig on %s to version %d: %s", primary.m.Name, cfg.version+1, st.Reason)
	if err == nil {
		s.act("%s", what)
		s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s", what)
		return nil
	}
	werr, transient := classify(err)
	if errors.Is(werr, ErrNotCommitted) && serverCode(err) == codeMaxTimeMSExpired {
		// Installed on the primary, not yet on a majority: the next step waits for it.
		s.act("%s (installed, not yet committed)", what)
		s.ready(v1.ConditionFalse, ReasonWaitingForCommit, "%s: %v", what, werr)
		return nil
	}
	if transient {
		s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s: %v", what, werr)
		return nil
	}
	s.ready(v1.ConditionFalse, ReasonConfigRejected, "%s: %v", what, werr)
	return fmt.Errorf("replicasets/%s: %s: %w", s.e.name, what, werr)
}

func applyStep(cur []ConfigMember, st Step) []ConfigMember {
	var out []ConfigMember
	for _, m := range cur {
		switch {
		case m.Host == st.Host && st.Kind == StepRemove:
			continue
		case m.Host == st.Host && st.Kind == StepChange:
			m.Votes, m.Priority = st.Votes, st.Priority
		}
		out = append(out, m)
	}
	if st.Kind == StepAdd {
		out = append(out, ConfigMember{ID: st.ID, Host: st.Host, Votes: st.Votes, Priority: st.Priority})
	}
	return out
}

func (s *step) converged(cfg *rawConfig) {
	inCfg := map[string]bool{}
	for _, m := range cfg.members {
		inCfg[m.Host] = true
	}
	var pending, unhealthy []string
	for i, m := range s.d.Members {
		if !inCfg[hostOf(m)] {
			pending = append(pending, m.Name)
		} else if s.obs.Members[i].Health != HealthHealthy {
			unhealthy = append(unhealthy, m.Name)
		}
	}
	switch {
	case len(pending) > 0:
		s.ready(v1.ConditionFalse, ReasonMembersPending, "not in the config until their replicas are ready: %s", strings.Join(pending, ", "))
	case len(unhealthy) > 0:
		s.ready(v1.ConditionFalse, ReasonMembersPending, "primary %s; unhealthy members: %s", s.obs.Primary, strings.Join(unhealthy, ", "))
	default:
		s.ready(v1.ConditionTrue, ReasonConverged, "primary %s, %d members, %d voting, config version %d", s.obs.Primary, len(cfg.members), countVoters(cfg.members), cfg.version)
	}
}

func countVoters(ms []ConfigMember) int {
	n := 0
	for _, m := range ms {
		if m.Votes == 1 {
			n++
		}
	}
	return n
}

// stepDown asks the primary to hand over (election handoff) before a change it cannot take
// as primary.
func (s *step) stepDown(ctx context.Context, primary *probe, st Step) error {
	cmd := bson.D{{Key: "replSetStepDown", Value: 60}, {Key: "secondaryCatchUpPeriodSecs", Value: 10}}
	err := s.e.run(ctx, primary.m, 11*time.Second, cmd, nil)
	what := fmt.Sprintf("replSetStepDown on %s: %s", primary.m.Name, st.Reason)
	if err != nil && serverCode(err) != 0 {
		werr, _ := classify(err)
		s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s: %v", what, werr)
		return nil
	}
	// A network error is expected from servers that drop connections on step-down.
	s.act("%s", what)
	s.ready(v1.ConditionFalse, ReasonReconfiguring, "%s", what)
	return nil
}

// noPrimary handles a set without an agreed primary: wait for the election, or, with the
// opt-in, force a reconfig onto the survivors when a majority of the voters is known gone.
func (s *step) noPrimary(ctx context.Context, statusPrimary string, selfPrimaries []string) error {
	if statusPrimary != "" || len(selfPrimaries) > 0 {
		s.ready(v1.ConditionFalse, ReasonNoPrimary, "primary not agreed: replSetGetStatus says %q, members that say they are primary: %v", s.nameOf(statusPrimary), s.namesOf(selfPrimaries))
		return nil
	}
	// The newest config any member holds.
	var cfg *rawConfig
	var from *probe
	for _, p := range s.probes {
		if !p.initiated(s.spec.ReplSetName) && p.status == nil {
			continue
		}
		c, err := s.getConfig(ctx, p.m)
		if err == nil && (cfg == nil || c.version > cfg.version) {
			cfg, from = c, p
		}
	}
	if cfg == nil {
		s.ready(v1.ConditionFalse, ReasonNoPrimary, "no primary, and no member answers replSetGetConfig")
		return nil
	}
	ready := map[string]bool{}
	for _, m := range s.d.Members {
		if m.Ready {
			ready[hostOf(m)] = true
		}
	}
	var gone, alive, unsure []string
	for _, m := range cfg.members {
		if m.Votes != 1 {
			continue
		}
		p := s.byHost[m.Host]
		switch {
		case p != nil && p.reachable():
			alive = append(alive, m.Host)
		case !ready[m.Host]:
			gone = append(gone, m.Host) // not desired, or its replica is not running
		default:
			unsure = append(unsure, m.Host) // running but unreachable: maybe a partition
		}
	}
	voters := len(alive) + len(gone) + len(unsure)
	need := voters/2 + 1
	if len(gone) < need {
		s.ready(v1.ConditionFalse, ReasonNoPrimary, "no primary; %d of %d voters answer, waiting for an election (gone: %v, unreachable: %v)", len(alive), voters, s.namesOf(gone), s.namesOf(unsure))
		return nil
	}
	// Survivors hold the set's config and data: a replica re-created on an empty volume answers
	// but has neither, and must not be the set's only member after a force.
	survivorsAlive := map[string]bool{}
	for _, p := range s.probes {
		if p.initiated(s.spec.ReplSetName) && p.m.Ready && !p.m.EmptyData {
			survivorsAlive[hostOf(p.m)] = true
		}
	}
	survivors := Survivors(cfg.members, targetsOf(s.d, s.spec), survivorsAlive)
	if len(survivors) == 0 || !leavesElectable(survivors, "", 0, 0, false) {
		s.ready(v1.ConditionFalse, ReasonMajorityLost, "no primary and a majority of voters is gone (%v); no electable survivor to reconfigure onto", s.namesOf(gone))
		return nil
	}
	var survivorNames []string
	for _, m := range survivors {
		survivorNames = append(survivorNames, s.nameOf(m.Host))
	}
	if !s.spec.AllowForceReconfig {
		s.ready(v1.ConditionFalse, ReasonMajorityLost, "no primary and a majority of voters is gone (%v); set spec.mongo.allowForceReconfig to force a reconfig onto %v (majority-committed writes may be rolled back)", s.namesOf(gone), survivorNames)
		return nil
	}
	// Run it on a survivor: the member the newest config came from if it survives, else the first.
	target := from
	if !survivorsAlive[hostOf(target.m)] || !containsHost(survivors, hostOf(target.m)) {
		target = s.byHost[survivors[0].Host]
	}
	doc := cfg.withMembers(survivors)
	err := s.e.run(ctx, target.m, time.Second, bson.D{{Key: "replSetReconfig", Value: doc}, {Key: "force", Value: true}}, nil)
	what := fmt.Sprintf("forced replSetReconfig on %s onto %v (voters gone: %v)", target.m.Name, survivorNames, s.namesOf(gone))
	if err != nil {
		werr, transient := classify(err)
		s.ready(v1.ConditionFalse, ReasonMajorityLost, "%s: %v", what, werr)
		if transient {
			return nil
		}
		return fmt.Errorf("replicasets/%s: %s: %w", s.e.name, what, werr)
	}
	s.act("%s", what)
	s.ready(v1.ConditionFalse, ReasonForcedReconfig, "%s", what)
	return nil
}

func containsHost(ms []ConfigMember, host string) bool {
	for _, m := range ms {
		if m.Host == host {
			return true
		}
	}
	return false
}

func (s *step) namesOf(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, s.nameOf(h))
	}
	sort.Strings(out)
	return out
}

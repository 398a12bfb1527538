package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/replicaset"
)

// SecretPassword is the key of Desired.Secrets holding the members' password (read by the
// controller from spec.redis.passwordSecret).
const SecretPassword = "password"

// Member health values in status.members[].health.
const (
	HealthHealthy     = "healthy"
	HealthSyncing     = "syncing"     // a replica whose link to its master is down
	HealthUnreachable = "unreachable" // runs, but does not answer
	HealthNotReady    = "notReady"    // not running, or its node is lost
	// HealthDiverged: answers, but claims master or follows another master while the agreed
	// primary is someone else (a returning old master before Sentinel converts it).
	HealthDiverged = "diverged"
)

// Member roles in status.members[].role.
const (
	RoleMaster  = "master"
	RoleReplica = "replica"
	RoleUnknown = "unknown"
)

// Config holds the engine's own knobs; NewEngine uses DefaultConfig.
type Config struct {
	// ResetInterval spaces SENTINEL RESET: one sentinel at a time, at most one per interval
	// (the Sentinel docs ask for 30 s, so the reset one rediscovers the set before the next).
	// Default 30s.
	ResetInterval time.Duration
	// FailoverInterval spaces planned SENTINEL FAILOVER requests. Default: the set's
	// failover-timeout.
	FailoverInterval time.Duration
	// PauseWrites is how long CLIENT PAUSE WRITE holds writes on the master before a planned
	// failover, so the replica Sentinel promotes has every acknowledged write. Default 2s; a
	// negative value sends no pause.
	PauseWrites time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{ResetInterval: 30 * time.Second, PauseWrites: 2 * time.Second}
}

// Engine converges one Redis Sentinel topology (replicaset.Engine).
type Engine struct {
	opts replicaset.Options
	cfg  Config
	log  *slog.Logger

	mu sync.Mutex
	// guarded by mu:
	clients    map[string]*goredis.Client // by dial address and password
	subs       map[string]context.CancelFunc
	configured map[string]string // dial address → run_id+settings applied
	lastReset  time.Time
	lastFail   time.Time
	closed     bool
}

var _ replicaset.Engine = (*Engine)(nil)

// NewEngine returns a redis Engine with DefaultConfig.
func NewEngine(opts replicaset.Options) (replicaset.Engine, error) {
	return NewEngineWithConfig(opts, DefaultConfig())
}

// NewEngineWithConfig returns a redis Engine.
func NewEngineWithConfig(opts replicaset.Options, cfg Config) (*Engine, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if cfg.ResetInterval <= 0 {
		cfg.ResetInterval = DefaultConfig().ResetInterval
	}
	if cfg.PauseWrites == 0 {
		cfg.PauseWrites = DefaultConfig().PauseWrites
	}
	return &Engine{opts: opts, cfg: cfg, log: opts.Logger.With("engine", "redis", "replicaset", opts.Name),
		clients: map[string]*goredis.Client{}, subs: map[string]context.CancelFunc{}, configured: map[string]string{}}, nil
}

// Close closes every connection and subscription.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for _, cancel := range e.subs {
		cancel()
	}
	e.subs = map[string]context.CancelFunc{}
	var errs []error
	for k, c := range e.clients {
		errs = append(errs, c.Close())
		delete(e.clients, k)
	}
	return errors.Join(errs...)
}

func (e *Engine) client(addr, password string) *goredis.Client {
	key := addr + "\x00" + password
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.clients[key]; ok {
		return c
	}
	o := &goredis.Options{
		Addr: addr, Password: password, Protocol: 2, DisableIdentity: true,
		DialTimeout: e.opts.Timeout, ReadTimeout: e.opts.Timeout, WriteTimeout: e.opts.Timeout,
		MaxRetries: -1, PoolSize: 4, ContextTimeoutEnabled: true,
	}
	if e.opts.Dial != nil {
		o.Dialer = e.opts.Dial
	}
	c := goredis.NewClient(o)
	e.clients[key] = c
	return c
}

// dropClients closes clients for addresses no longer in the set.
func (e *Engine) dropClients(keep map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, c := range e.clients {
		addr, _, _ := strings.Cut(k, "\x00")
		if !keep[addr] {
			_ = c.Close()
			delete(e.clients, k)
			delete(e.configured, addr)
		}
	}
	for addr, cancel := range e.subs {
		if !keep[addr] {
			cancel()
			delete(e.subs, addr)
		}
	}
}

// settings is what the engine applies to members and sentinels, derived from the spec.
type settings struct {
	masterName      string
	quorum          int
	downAfter       time.Duration
	failoverTimeout time.Duration
	minReplicas     int32
	minLag          time.Duration
	password        string
}

func settingsOf(d replicaset.Desired) (settings, error) {
	rs := d.ReplicaSet
	if rs == nil || rs.Spec.Redis == nil {
		return settings{}, errors.New("redis: spec.redis is required")
	}
	r := rs.Spec.Redis
	s := settings{
		masterName: r.MasterName, quorum: int(r.Quorum),
		downAfter: r.EffectiveDownAfter(), failoverTimeout: r.EffectiveFailoverTimeout(),
		minReplicas: r.MinReplicasToWrite, minLag: r.EffectiveMinReplicasMaxLag(),
		password: d.Secrets[SecretPassword],
	}
	if s.masterName == "" {
		s.masterName = rs.Metadata.Name
	}
	if s.quorum <= 0 {
		s.quorum = majority(len(d.Sentinels))
	}
	return s, nil
}

func (s settings) fingerprint() string {
	return fmt.Sprintf("%s|%d|%d|%d|%d|%d|%x", s.masterName, s.quorum, s.downAfter, s.failoverTimeout, s.minReplicas, s.minLag, hashString(s.password))
}

func hashString(s string) uint64 { // FNV-1a: a change detector, not a secret
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Reconcile reads every member and sentinel, decides one step (plan), carries it out and
// reports what it saw.
func (e *Engine) Reconcile(ctx context.Context, d replicaset.Desired) (replicaset.Observation, error) {
	set, err := settingsOf(d)
	if err != nil {
		return replicaset.Observation{}, err
	}
	now := d.Now
	if now.IsZero() {
		now = time.Now()
	}
	keep := map[string]bool{}
	for _, m := range d.Members {
		keep[m.Dial] = true
	}
	for _, s := range d.Sentinels {
		keep[s.Dial] = true
	}
	e.dropClients(keep)

	members := make([]memberView, len(d.Members))
	sentinels := make([]sentinelView, len(d.Sentinels))
	var wg sync.WaitGroup
	for i, m := range d.Members {
		wg.Add(1)
		go func() { defer wg.Done(); members[i] = e.readMember(ctx, m, set) }()
	}
	for i, s := range d.Sentinels {
		wg.Add(1)
		go func() { defer wg.Done(); sentinels[i] = e.readSentinel(ctx, s, set) }()
	}
	wg.Wait()
	e.subscribe(d.Sentinels)

	e.mu.Lock()
	in := planInput{Members: members, Sentinels: sentinels, LastPrimary: d.LastPrimary, Now: now,
		LastReset: e.lastReset, ResetInterval: e.cfg.ResetInterval,
		LastFailover: e.lastFail, FailoverInterval: e.cfg.FailoverInterval}
	e.mu.Unlock()
	if in.FailoverInterval <= 0 {
		in.FailoverInterval = set.failoverTimeout
	}
	p := plan(in)

	obs := replicaset.Observation{PrimaryAgreed: p.Agreed}
	if p.Primary >= 0 {
		obs.Primary = members[p.Primary].Name
	}
	var stepErrs []error
	for _, st := range p.Steps {
		line, err := e.apply(ctx, st, members, sentinels, d, set, now)
		if err != nil {
			stepErrs = append(stepErrs, fmt.Errorf("%s: %w", line, err))
			e.log.Warn("replica set step failed", "step", line, "why", st.Why, "err", err)
			break // one step at a time: the next reconcile reads again
		}
		obs.Actions = append(obs.Actions, line)
		e.log.Info("replica set step", "step", line, "why", st.Why)
	}
	obs.Members = memberStatuses(members, p)
	obs.Conditions = conditions(p, obs.Members, now)
	return obs, errors.Join(stepErrs...)
}

func memberStatuses(ms []memberView, p planOutput) []v1.MemberStatus {
	out := make([]v1.MemberStatus, len(ms))
	for i := range ms {
		m := &ms[i]
		st := v1.MemberStatus{Name: m.Name, Role: RoleUnknown, Offset: m.Offset}
		switch {
		case !m.Ready:
			st.Health = HealthNotReady
		case !m.Reachable:
			st.Health = HealthUnreachable
		case m.Role == "master":
			st.Role, st.Health = RoleMaster, HealthHealthy
			if p.Agreed && p.Primary != i {
				st.Health = HealthDiverged
			}
		case m.Role == "slave":
			st.Role, st.Health = RoleReplica, HealthHealthy
			switch {
			case p.Agreed && memberAt(ms, m.MasterHost, m.MasterPort) != p.Primary:
				st.Health = HealthDiverged
			case !m.LinkUp:
				st.Health = HealthSyncing
			}
		default:
			st.Health = HealthHealthy
		}
		out[i] = st
	}
	return out
}

func conditions(p planOutput, ms []v1.MemberStatus, now time.Time) []v1.Condition {
	agreed := v1.Condition{Type: v1.ReplicaSetPrimaryAgreed, Status: v1.ConditionFalse, Reason: v1.ConditionReason(p.Mode), Message: p.Message, LastTransitionTime: now}
	if p.Agreed {
		agreed.Status = v1.ConditionTrue
	}
	ready := v1.Condition{Type: v1.ReplicaSetReady, Status: v1.ConditionFalse, LastTransitionTime: now}
	healthy := 0
	for _, m := range ms {
		if m.Health == HealthHealthy {
			healthy++
		}
	}
	switch {
	case !p.Agreed:
		ready.Reason, ready.Message = v1.ConditionReason(p.Mode), p.Message
	case healthy < len(ms):
		ready.Reason, ready.Message = "MembersNotHealthy", fmt.Sprintf("%d of %d members healthy", healthy, len(ms))
	default:
		ready.Status, ready.Reason, ready.Message = v1.ConditionTrue, "AllMembersHealthy", fmt.Sprintf("%d of %d members healthy", healthy, len(ms))
	}
	return []v1.Condition{ready, agreed}
}

func dialHost(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// readMember reads ROLE and DBSIZE and, once per server run (and settings change), applies the
// member settings: replica-announce-ip/port (the mesh name), masterauth, min-replicas-*.
func (e *Engine) readMember(ctx context.Context, m replicaset.Member, set settings) memberView {
	v := memberView{Name: m.Name, Index: m.Index, Host: m.Host, Port: m.Port, DialHost: dialHost(m.Dial),
		Ready: m.Ready, Draining: m.Draining, EmptyData: m.EmptyData}
	if !m.Ready || m.Dial == "" {
		return v
	}
	c := e.client(m.Dial, set.password)
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	pipe := c.Pipeline()
	info := pipe.Info(ctx, "server")
	role := pipe.Do(ctx, "ROLE")
	size := pipe.DBSize(ctx)
	if _, err := pipe.Exec(ctx); err != nil {
		e.log.Debug("member does not answer", "member", m.Name, "addr", m.Dial, "err", err)
		return v
	}
	if err := parseRole(role.Val(), &v); err != nil {
		e.log.Warn("member's ROLE unreadable", "member", m.Name, "err", err)
		return v
	}
	v.Reachable = true
	v.Keys = size.Val()
	runID := infoField(info.Val(), "run_id")
	want := runID + "|" + m.Host + "|" + strconv.Itoa(m.Port) + "|" + set.fingerprint()
	e.mu.Lock()
	done := e.configured[m.Dial] == want
	e.mu.Unlock()
	if !done {
		if err := e.configureMember(ctx, c, m, set, v); err != nil {
			e.log.Warn("configure member", "member", m.Name, "err", err)
		} else {
			e.mu.Lock()
			e.configured[m.Dial] = want
			e.mu.Unlock()
		}
	}
	return v
}

func (e *Engine) configureMember(ctx context.Context, c *goredis.Client, m replicaset.Member, set settings, v memberView) error {
	cur, err := c.ConfigGet(ctx, "replica-announce-ip").Result()
	if err != nil {
		return fmt.Errorf("CONFIG GET replica-announce-ip: %w", err)
	}
	announceChanged := cur["replica-announce-ip"] != m.Host
	args := []any{"CONFIG", "SET",
		"replica-announce-ip", m.Host, "replica-announce-port", strconv.Itoa(m.Port),
		"masterauth", set.password,
		"min-replicas-to-write", strconv.Itoa(int(set.minReplicas)),
		"min-replicas-max-lag", strconv.Itoa(int(set.minLag / time.Second)),
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("CONFIG SET: %w", err)
	}
	if announceChanged && v.Role == "slave" {
		// The master lists a replica under the address it announced when it connected: make
		// it reconnect (a partial resync) so that Sentinel learns the mesh name.
		if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "master").Err(); err != nil {
			return fmt.Errorf("CLIENT KILL TYPE master: %w", err)
		}
	}
	return nil
}

// parseRole reads a ROLE reply: ["master", offset, [...]] or ["slave", host, port, state, offset].
func parseRole(val any, v *memberView) error {
	arr, ok := val.([]any)
	if !ok || len(arr) == 0 {
		return fmt.Errorf("ROLE: unexpected reply %T", val)
	}
	role, _ := arr[0].(string)
	switch role {
	case "master":
		if len(arr) < 2 {
			return errors.New("ROLE: short master reply")
		}
		v.Role, v.Offset = "master", toInt64(arr[1])
	case "slave":
		if len(arr) < 5 {
			return errors.New("ROLE: short replica reply")
		}
		v.Role = "slave"
		v.MasterHost, _ = arr[1].(string)
		v.MasterPort = int(toInt64(arr[2]))
		state, _ := arr[3].(string)
		v.LinkUp = state == "connected"
		v.Offset = toInt64(arr[4])
	default:
		return fmt.Errorf("ROLE: role %q is not a data member", role)
	}
	return nil
}

func toInt64(x any) int64 {
	switch t := x.(type) {
	case int64:
		return t
	case string:
		n, _ := strconv.ParseInt(t, 10, 64)
		return n
	}
	return 0
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == key {
			return val
		}
	}
	return ""
}

// readSentinel reads the sentinel's view of the set and, once per sentinel run, applies the
// global settings (hostnames, announce address).
func (e *Engine) readSentinel(ctx context.Context, s replicaset.Member, set settings) sentinelView {
	v := sentinelView{Name: s.Name, Host: s.Host, Port: s.Port, Ready: s.Ready}
	if !s.Ready || s.Dial == "" {
		return v
	}
	c := e.client(s.Dial, "")
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	pipe := c.Pipeline()
	info := pipe.Info(ctx, "server")
	addr := pipe.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", set.masterName)
	master := pipe.Do(ctx, "SENTINEL", "MASTER", set.masterName)
	replicas := pipe.Do(ctx, "SENTINEL", "REPLICAS", set.masterName)
	others := pipe.Do(ctx, "SENTINEL", "SENTINELS", set.masterName)
	_, _ = pipe.Exec(ctx)
	if info.Err() != nil {
		e.log.Debug("sentinel does not answer", "sentinel", s.Name, "addr", s.Dial, "err", info.Err())
		return v
	}
	v.Reachable = true
	runID := infoField(info.Val(), "run_id")
	want := runID + "|" + s.Host + "|" + strconv.Itoa(s.Port)
	e.mu.Lock()
	done := e.configured[s.Dial] == want
	e.mu.Unlock()
	if !done {
		if err := e.configureSentinel(ctx, c, s); err != nil {
			e.log.Warn("configure sentinel", "sentinel", s.Name, "err", err)
		} else {
			e.mu.Lock()
			e.configured[s.Dial] = want
			e.mu.Unlock()
		}
	}
	if arr, ok := addr.Val().([]any); ok && len(arr) == 2 && addr.Err() == nil {
		v.Monitoring = true
		v.MasterHost, _ = arr[0].(string)
		v.MasterPort = int(toInt64(arr[1]))
	}
	if !v.Monitoring {
		return v
	}
	if mm := kv(master.Val()); mm != nil {
		v.Flags = mm["flags"]
		// Apply the per-set settings when they differ (a new spec, a sentinel that monitors
		// the set from its config file with other values).
		if err := e.setSentinelOptions(ctx, c, mm, set); err != nil {
			e.log.Warn("SENTINEL SET", "sentinel", s.Name, "err", err)
		}
	}
	for _, r := range list(replicas.Val()) {
		v.Replicas = append(v.Replicas, addrKey(r["ip"], atoi(r["port"])))
	}
	for _, o := range list(others.Val()) {
		v.Sentinels = append(v.Sentinels, addrKey(o["ip"], atoi(o["port"])))
	}
	return v
}

func (e *Engine) configureSentinel(ctx context.Context, c *goredis.Client, s replicaset.Member) error {
	for _, kvp := range [][2]string{
		{"resolve-hostnames", "yes"}, {"announce-hostnames", "yes"},
		{"announce-ip", s.Host}, {"announce-port", strconv.Itoa(s.Port)},
	} {
		if err := c.Do(ctx, "SENTINEL", "CONFIG", "SET", kvp[0], kvp[1]).Err(); err != nil {
			return fmt.Errorf("SENTINEL CONFIG SET %s: %w", kvp[0], err)
		}
	}
	return nil
}

func (e *Engine) setSentinelOptions(ctx context.Context, c *goredis.Client, mm map[string]string, set settings) error {
	args := []any{"SENTINEL", "SET", set.masterName}
	if mm["down-after-milliseconds"] != strconv.FormatInt(set.downAfter.Milliseconds(), 10) {
		args = append(args, "down-after-milliseconds", set.downAfter.Milliseconds())
	}
	if mm["failover-timeout"] != strconv.FormatInt(set.failoverTimeout.Milliseconds(), 10) {
		args = append(args, "failover-timeout", set.failoverTimeout.Milliseconds())
	}
	if mm["quorum"] != strconv.Itoa(set.quorum) {
		args = append(args, "quorum", set.quorum)
	}
	// auth-pass is not shown by SENTINEL MASTER: set it once per settings change.
	key := "auth|" + c.Options().Addr
	fp := fmt.Sprintf("%x", hashString(set.password))
	e.mu.Lock()
	authDone := e.configured[key] == fp
	e.mu.Unlock()
	if !authDone {
		args = append(args, "auth-pass", set.password)
	}
	if len(args) == 3 {
		return nil
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		return err
	}
	e.mu.Lock()
	e.configured[key] = fp
	e.mu.Unlock()
	return nil
}

// kv turns a flat [k, v, k, v...] reply (or a RESP map) into a map.
func kv(x any) map[string]string {
	switch t := x.(type) {
	case []any:
		m := make(map[string]string, len(t)/2)
		for i := 0; i+1 < len(t); i += 2 {
			k, _ := t[i].(string)
			m[k] = fmt.Sprint(t[i+1])
		}
		return m
	case map[any]any:
		m := make(map[string]string, len(t))
		for k, v := range t {
			m[fmt.Sprint(k)] = fmt.Sprint(v)
		}
		return m
	}
	return nil
}

func list(x any) []map[string]string {
	arr, ok := x.([]any)
	if !ok {
		return nil
	}
	out := make([]map[string]string, 0, len(arr))
	for _, a := range arr {
		if m := kv(a); m != nil {
			out = append(out, m)
		}
	}
	return out
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// apply carries out one step and returns the line that describes it.
func (e *Engine) apply(ctx context.Context, st step, ms []memberView, ss []sentinelView, d replicaset.Desired, set settings, now time.Time) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*e.opts.Timeout)
	defer cancel()
	switch st.Kind {
	case stepPromote:
		m := d.Members[st.Member]
		line := "REPLICAOF NO ONE on " + m.Name
		return line, e.client(m.Dial, set.password).Do(ctx, "REPLICAOF", "NO", "ONE").Err()
	case stepReplicaOf:
		m, master := d.Members[st.Member], d.Members[st.Master]
		line := fmt.Sprintf("REPLICAOF %s %d on %s", master.Host, master.Port, m.Name)
		return line, e.client(m.Dial, set.password).Do(ctx, "REPLICAOF", master.Host, strconv.Itoa(master.Port)).Err()
	case stepMonitor:
		s, master := d.Sentinels[st.Sentinel], d.Members[st.Master]
		line := fmt.Sprintf("SENTINEL MONITOR %s %s %d %d on %s", set.masterName, master.Host, master.Port, set.quorum, s.Name)
		c := e.client(s.Dial, "")
		err := c.Do(ctx, "SENTINEL", "MONITOR", set.masterName, master.Host, strconv.Itoa(master.Port), strconv.Itoa(set.quorum)).Err()
		if err != nil && !strings.Contains(err.Error(), "Duplicated master name") {
			return line, err
		}
		args := []any{"SENTINEL", "SET", set.masterName,
			"down-after-milliseconds", set.downAfter.Milliseconds(),
			"failover-timeout", set.failoverTimeout.Milliseconds(),
			"parallel-syncs", 1, "auth-pass", set.password}
		if err := c.Do(ctx, args...).Err(); err != nil {
			return line, fmt.Errorf("SENTINEL SET: %w", err)
		}
		e.mu.Lock()
		e.configured["auth|"+c.Options().Addr] = fmt.Sprintf("%x", hashString(set.password))
		e.mu.Unlock()
		return line, nil
	case stepReset:
		s := d.Sentinels[st.Sentinel]
		line := fmt.Sprintf("SENTINEL RESET %s on %s (%s)", set.masterName, s.Name, st.Why)
		e.mu.Lock()
		e.lastReset = now
		e.mu.Unlock()
		return line, e.client(s.Dial, "").Do(ctx, "SENTINEL", "RESET", set.masterName).Err()
	case stepFailover:
		s, master := d.Sentinels[st.Sentinel], d.Members[st.Master]
		line := fmt.Sprintf("SENTINEL FAILOVER %s on %s (%s)", set.masterName, s.Name, st.Why)
		e.mu.Lock()
		e.lastFail = now
		e.mu.Unlock()
		if e.cfg.PauseWrites > 0 {
			// Writes wait while the replica catches up; Sentinel's promotion then loses none.
			if err := e.client(master.Dial, set.password).Do(ctx, "CLIENT", "PAUSE", e.cfg.PauseWrites.Milliseconds(), "WRITE").Err(); err != nil {
				e.log.Warn("CLIENT PAUSE WRITE before failover", "member", master.Name, "err", err)
			}
		}
		return line, e.client(s.Dial, "").Do(ctx, "SENTINEL", "FAILOVER", set.masterName).Err()
	}
	return "", fmt.Errorf("redis: unknown step %d", st.Kind)
}

// subscribe keeps one +switch-master subscription per sentinel; a message calls
// Options.Changed so that the controller reconciles at once.
func (e *Engine) subscribe(ss []replicaset.Member) {
	if e.opts.Changed == nil {
		return
	}
	for _, s := range ss {
		if !s.Ready || s.Dial == "" {
			continue
		}
		e.mu.Lock()
		_, ok := e.subs[s.Dial]
		closed := e.closed
		e.mu.Unlock()
		if ok || closed {
			continue
		}
		c := e.client(s.Dial, "")
		ctx, cancel := context.WithCancel(context.Background())
		e.mu.Lock()
		e.subs[s.Dial] = cancel
		e.mu.Unlock()
		ps := c.Subscribe(ctx, "+switch-master")
		go func() {
			defer ps.Close()
			ch := ps.Channel()
			for {
				select {
				case <-ctx.Done():
					return
				case msg, ok := <-ch:
					if !ok {
						return
					}
					e.log.Info("sentinel reports +switch-master", "sentinel", s.Name, "payload", msg.Payload)
					e.opts.Changed()
				}
			}
		}()
	}
}

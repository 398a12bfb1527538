// The Engine: its connections to members, the commands it runs, and Reconcile, the entry point.

package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// Package replicaset holds what the replica-set controller (controllers/replicaset) and its
// engines (pkg/replicaset/redis, pkg/replicaset/mongo) share: the members as the controller sees
// them and what one reconcile step observed. Engines talk to the database; the controller talks to
// the store. Nothing here imports either.
package replicaset

import (
	"context"
	"log/slog"
	"net"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Member is one member of a replica set: one replica of the member Service.
type Member struct {
	// Name is the replica name "<svc>-<i>"; it is what status.primary and status.members[].name
	// hold (DESIGN.md "Stateful").
	Name string
	// Index is the replica index i.
	Index int
	// Host is the name the database itself uses for this member (REPLICAOF, replica-announce-ip,
	// SENTINEL MONITOR, the Mongo replica set config): the per-replica mesh name
	// "<svc>-<i>.<svc>" in a cluster, never a container IP. Tests with local processes set it
	// to an address the processes can reach each other on.
	Host string
	// Port is the member's database port as other members and clients reach it at Host.
	Port int
	// Dial is the address the controller dials to talk to the member ("ip:port"): the replica's
	// virtual IP on the agent running the controller, or a loopback address in tests.
	Dial string
	// Ready is true when the replica's container runs and its node is alive.
	Ready bool
	// Node is where the replica runs ("" when it is not placed).
	Node string
	// EmptyData is true when the member's volume was created empty and the member never held
	// data (a member with an empty volume never becomes master while another has data).
	EmptyData bool
	// Draining is true when the member should stop being the primary: its node is cordoned
	// (spec.unschedulable) or its index is being scaled away. An engine moves the primary
	// off it with its planned-move procedure (SENTINEL FAILOVER, replSetStepDown).
	Draining bool
}

// Desired is one reconcile step's input.
type Desired struct {
	ReplicaSet *v1.ReplicaSet
	Members    []Member
	// Sentinels are the engine's helper processes where it has some (redis: the sentinel
	// Service's replicas, Host "<sentinel>-<i>.<sentinel>"); nil for engines without.
	Sentinels []Member
	// Secrets holds the values the engine needs (auth passwords), already read from Secrets.
	Secrets map[string]string
	// LastPrimary is the last primary recorded in status ("" when none).
	LastPrimary string
	// Now is the controller's clock reading for this step.
	Now time.Time
}

// Observation is what one reconcile step saw and did.
type Observation struct {
	// Primary is the member name of the current primary/master, "" when none is agreed.
	Primary string
	// PrimaryAgreed is true when the engine's own view (the Sentinel majority, replSetGetStatus)
	// and the primary's own ROLE/hello agree: only then does <rs>-primary route to it.
	PrimaryAgreed bool
	// Members is per-member role and health, in Desired.Members order.
	Members []v1.MemberStatus
	// Actions are what the step changed, one short line each ("replSetInitiate on db-0"), for
	// logs and events.
	Actions []string
	// Conditions the engine reports (Ready and engine-specific ones), merged into status.
	Conditions []v1.Condition
}

// Engine converges one database topology. Reconcile is called repeatedly; each call moves the
// topology at most one safe step toward Desired (one member added or removed, one failover) and
// reports what it observed. It must be idempotent and must not block past ctx.
type Engine interface {
	Reconcile(ctx context.Context, d Desired) (Observation, error)
	// Close releases connections.
	Close() error
}

// Options are what the controller hands an engine constructor. Each engine package exports
// `func NewEngine(opts replicaset.Options) (replicaset.Engine, error)`; the controller keeps one
// Engine per ReplicaSet object and closes it when the object goes.
type Options struct {
	// Name is the ReplicaSet object's name (for logs and metrics labels).
	Name   string
	Logger *slog.Logger
	// Dial opens connections to members (Member.Dial); nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds one command to one member. Zero means 2 s.
	Timeout time.Duration
	// Changed, when set, is called (from any goroutine, without blocking) when the engine learns
	// between reconciles that the topology changed (a Sentinel +switch-master), so that the
	// controller reconciles the ReplicaSet now rather than at its next poll.
	Changed func()
}

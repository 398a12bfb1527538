package v1

import "time"

// ReplicaSet keeps a Mongo replica set or a Redis Sentinel topology in line with the Services
// that run its members.
type ReplicaSet struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta       `json:"metadata"`
	Spec     ReplicaSetSpec   `json:"spec"`
	Status   ReplicaSetStatus `json:"status,omitempty"`
}

// Engine is mongo or redis.
type Engine string

// Engines.
const (
	EngineMongo Engine = "mongo"
	EngineRedis Engine = "redis"
)

// ReplicaSetSpec names the engine and the members.
type ReplicaSetSpec struct {
	Engine Engine `json:"engine"`
	// Members are Service names; every replica of each is a member.
	Members []string         `json:"members"`
	Mongo   *MongoReplicaSet `json:"mongo,omitempty"`
	Redis   *RedisReplicaSet `json:"redis,omitempty"`
}

// MongoReplicaSet configures a Mongo replica set.
type MongoReplicaSet struct {
	ReplSetName string `json:"replSetName"`
	// Priorities by member Service name. Default 1.
	Priorities map[string]float64 `json:"priorities,omitempty"`
	// AllowForceReconfig lets the controller run replSetReconfig with force:true onto the
	// surviving members, but only when no member is primary and a majority of the voting
	// members is known gone (their replicas are not running or no longer desired). Forcing can
	// roll back majority-committed writes; MongoDB's docs advise against doing it from
	// automation. Default false: the controller reports the lost majority and waits.
	AllowForceReconfig bool `json:"allowForceReconfig,omitempty"`
}

// RedisReplicaSet configures Redis Sentinel.
type RedisReplicaSet struct {
	MasterName string `json:"masterName"`
	// Quorum of sentinels to agree a master is down. Default: a majority of the sentinels.
	Quorum int32 `json:"quorum,omitempty"`
	// Sentinel is the Service running redis-sentinel. The replica-set controller owns it: it
	// creates it with one replica per node (maxPerNode 1) and keeps it so.
	Sentinel string `json:"sentinel"`
	// SentinelImage is the sentinel Service's image. Default: the first member Service's image.
	SentinelImage string `json:"sentinelImage,omitempty"`
	// SentinelCommand is the sentinel containers' command. Sentinel needs a writable config
	// file that exists. Default ["redis-sentinel", "/etc/redis/sentinel.conf"].
	SentinelCommand []string `json:"sentinelCommand,omitempty"`
	// SentinelPort is the port the sentinels listen on. Default 26379.
	SentinelPort int32 `json:"sentinelPort,omitempty"`
	// DownAfter is Sentinel's down-after-milliseconds, a Go duration. Default "5s".
	DownAfter *Duration `json:"downAfter,omitempty"`
	// FailoverTimeout is Sentinel's failover-timeout, a Go duration. Default "10s".
	FailoverTimeout *Duration `json:"failoverTimeout,omitempty"`
	// MinReplicasToWrite sets min-replicas-to-write on every member (with min-replicas-max-lag
	// MinReplicasMaxLag): a master that lost its replicas stops taking writes, which bounds
	// what a failover can lose. Default 0 (off).
	MinReplicasToWrite int32 `json:"minReplicasToWrite,omitempty"`
	// MinReplicasMaxLag is min-replicas-max-lag, a Go duration of whole seconds. Default "10s".
	MinReplicasMaxLag *Duration `json:"minReplicasMaxLag,omitempty"`
	// PasswordSecret names the Secret key holding the members' requirepass. The controller
	// uses it to log in, sets it as masterauth on every member and as auth-pass on every
	// sentinel. Default none (no auth).
	PasswordSecret *SecretKeyRef `json:"passwordSecret,omitempty"`
}

// ReplicaSet condition types.
const (
	ReplicaSetReady ConditionType = "Ready"
	// ReplicaSetPrimaryAgreed: the engine's view (the Sentinel majority) and the primary's own
	// role agree; only then does <rs>-primary route.
	ReplicaSetPrimaryAgreed ConditionType = "PrimaryAgreed"
)

// ReplicaSetStatus reports the topology.
type ReplicaSetStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Primary            string `json:"primary,omitempty"`
	// VirtualIP is the mesh address of <rs>-primary, allocated by the mesh controller from
	// --mesh.cidr. Empty until allocated.
	VirtualIP  string         `json:"virtualIP,omitempty"`
	Members    []MemberStatus `json:"members,omitempty"`
	Conditions []Condition    `json:"conditions,omitempty"`
}

// MemberStatus is one member's role and health.
type MemberStatus struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Health string `json:"health"`
	// Offset is the member's replication offset (Redis master_repl_offset or the replica's
	// processed offset), 0 when unknown.
	Offset int64 `json:"offset,omitempty"`
}

func (r *ReplicaSet) GetConditions() *[]Condition { return &r.Status.Conditions }

// Redis defaults (RedisReplicaSet's fields say where each applies).
const (
	DefaultSentinelPort     = 26379
	DefaultRedisDownAfter   = 5 * time.Second
	DefaultRedisFailover    = 10 * time.Second
	DefaultRedisMinLag      = 10 * time.Second
	DefaultSentinelConfig   = "/etc/redis/sentinel.conf"
	DefaultRedisPasswordKey = "password"
)

// DefaultSentinelCommand is RedisReplicaSet.SentinelCommand's default.
func DefaultSentinelCommand() []string { return []string{"redis-sentinel", DefaultSentinelConfig} }

// EffectiveDownAfter returns DownAfter after defaulting.
func (r *RedisReplicaSet) EffectiveDownAfter() time.Duration {
	return durOr(r.DownAfter, DefaultRedisDownAfter)
}

// EffectiveFailoverTimeout returns FailoverTimeout after defaulting.
func (r *RedisReplicaSet) EffectiveFailoverTimeout() time.Duration {
	return durOr(r.FailoverTimeout, DefaultRedisFailover)
}

// EffectiveMinReplicasMaxLag returns MinReplicasMaxLag after defaulting.
func (r *RedisReplicaSet) EffectiveMinReplicasMaxLag() time.Duration {
	return durOr(r.MinReplicasMaxLag, DefaultRedisMinLag)
}

// EffectiveSentinelPort returns SentinelPort after defaulting.
func (r *RedisReplicaSet) EffectiveSentinelPort() int {
	if r.SentinelPort == 0 {
		return DefaultSentinelPort
	}
	return int(r.SentinelPort)
}

func durOr(d *Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration == 0 {
		return def
	}
	return d.Duration
}

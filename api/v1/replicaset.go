package v1

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
	// Sentinel is the Service running redis-sentinel.
	Sentinel string `json:"sentinel"`
}

// ReplicaSet condition types.
const (
	ReplicaSetReady ConditionType = "Ready"
)

// ReplicaSetStatus reports the topology.
type ReplicaSetStatus struct {
	ObservedGeneration int64          `json:"observedGeneration,omitempty"`
	Primary            string         `json:"primary,omitempty"`
	Members            []MemberStatus `json:"members,omitempty"`
	Conditions         []Condition    `json:"conditions,omitempty"`
}

// MemberStatus is one member's role and health.
type MemberStatus struct {
	Name   string `json:"name"`
	Role   string `json:"role"`
	Health string `json:"health"`
}

func (r *ReplicaSet) GetConditions() *[]Condition { return &r.Status.Conditions }

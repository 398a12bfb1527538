package v1

import "time"

// Node is registered by each agent.
type Node struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     NodeSpec   `json:"spec"`
	Status   NodeStatus `json:"status,omitempty"`
}

// NodeSpec holds what an operator may change about a node.
type NodeSpec struct {
	Labels map[string]string `json:"labels,omitempty"`
	// Unschedulable (cordoned): no new replicas are placed here.
	Unschedulable bool `json:"unschedulable,omitempty"`
	// Drain: replicas here are moved elsewhere.
	Drain bool `json:"drain,omitempty"`
}

// RaftRole is the node's role in the replicated store.
type RaftRole string

// Raft roles.
const (
	RaftLeader   RaftRole = "leader"
	RaftFollower RaftRole = "follower"
	RaftLearner  RaftRole = "learner"
	RaftNone     RaftRole = "none"
)

// Node condition types.
const (
	NodeReady ConditionType = "Ready"
)

// Reasons for the Node Ready condition, set by the status controller from gossip.
const (
	ReasonNodeAlive   ConditionReason = "GossipAlive"
	ReasonNodeDead    ConditionReason = "NodeDead"
	ReasonNodeLeft    ConditionReason = "NodeLeft"
	ReasonNodeUnknown ConditionReason = "NodeStatusUnknown"
	// ReasonNodeRestarting: the agent stopped gracefully (an upgrade, a config change) and said
	// its containers keep running; the node keeps its replicas for the restart grace period.
	ReasonNodeRestarting ConditionReason = "AgentRestarting"
)

// EffectiveLabels returns the labels every consumer matches a node by (placement, DNS node
// selectors, the lb campaign, ctl): metadata.labels overlaid with spec.labels, spec winning.
// The result is a new map; n is not modified.
func (n *Node) EffectiveLabels() map[string]string {
	out := make(map[string]string, len(n.Metadata.Labels)+len(n.Spec.Labels))
	for k, v := range n.Metadata.Labels {
		out[k] = v
	}
	for k, v := range n.Spec.Labels {
		out[k] = v
	}
	return out
}

// NodeStatus is what the cluster observes of the node.
type NodeStatus struct {
	ObservedGeneration int64         `json:"observedGeneration,omitempty"`
	Addresses          NodeAddresses `json:"addresses,omitempty"`
	RaftRole           RaftRole      `json:"raftRole,omitempty"`
	GossipState        string        `json:"gossipState,omitempty"`
	AgentVersion       string        `json:"agentVersion,omitempty"`
	LastSeen           *time.Time    `json:"lastSeen,omitempty"`
	Conditions         []Condition   `json:"conditions,omitempty"`
}

// NodeAddresses are where the node's pieces listen.
type NodeAddresses struct {
	// Advertise is the address other nodes and Traefik use to reach its containers.
	Advertise string `json:"advertise,omitempty"`
	API       string `json:"api,omitempty"`
	Raft      string `json:"raft,omitempty"`
	Gossip    string `json:"gossip,omitempty"`
}

func (n *Node) GetConditions() *[]Condition { return &n.Status.Conditions }

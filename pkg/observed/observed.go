package observed

import (
	"sort"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Replica is one container of a Service as its node observes it.
type Replica struct {
	Service     string          `json:"service"`
	Index       int32           `json:"index"`
	Node        string          `json:"node"`
	ContainerID string          `json:"containerID,omitempty"`
	SpecHash    string          `json:"specHash,omitempty"`
	State       v1.ReplicaState `json:"state"`
	Health      v1.Health       `json:"health,omitempty"`
	// Ports maps "containerPort/protocol" ("8080/tcp") to the host:port other nodes reach it at.
	Ports    map[string]string `json:"ports,omitempty"`
	ExitCode int               `json:"exitCode,omitempty"`
	Restarts int               `json:"restarts,omitempty"`
	// Reason is a condition reason when the replica cannot run (ImageNotFound, PortConflict...).
	Reason    v1.ConditionReason `json:"reason,omitempty"`
	Message   string             `json:"message,omitempty"`
	UpdatedAt time.Time          `json:"updatedAt"`
}

// Ready reports whether the replica should receive traffic: running and healthy (or running
// without a health check).
func (r Replica) Ready() bool {
	return r.State == v1.ReplicaRunning && (r.Health == v1.HealthHealthy || r.Health == v1.HealthNone || r.Health == "")
}

// PortKey returns the key of a port in Replica.Ports.
func PortKey(containerPort int32, proto v1.Protocol) string {
	if proto == "" {
		proto = v1.ProtocolTCP
	}
	return itoa(int(containerPort)) + "/" + string(proto)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// LabelRuntime is the gossip label an agent sets to RuntimeNone when it runs without Docker
// (control plane only), so that the scheduler places no replica on it.
const (
	LabelRuntime = "constellation.io/runtime"
	RuntimeNone  = "none"
)

// Node states, the failure detector's word in Node.State.
const (
	StateAlive = "alive"
	StateDead  = "dead"
	StateLeft  = "left"
	// StateRestarting: the node's agent left gracefully saying it will be back and that its
	// containers keep running. How long that is believed is pkg/nodehealth's decision.
	StateRestarting = "restarting"
)

// Node is a member of the cluster as gossip sees it.
type Node struct {
	Name      string            `json:"name"`
	Advertise string            `json:"advertise"`
	API       string            `json:"api,omitempty"`
	Raft      string            `json:"raft,omitempty"`
	Gossip    string            `json:"gossip,omitempty"`
	Version   string            `json:"version,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Alive is false once the failure detector declares the node dead or it left.
	Alive bool `json:"alive"`
	// State is the failure detector's word: alive, dead, left, restarting.
	State string `json:"state"`
	// LastChange is when this agent saw State last change (zero when unknown).
	LastChange time.Time `json:"lastChange,omitempty"`
}

// View is one agent's current view of observed state.
type View interface {
	// Nodes returns every known node, sorted by name.
	Nodes() []Node
	// Replicas returns the replicas reported by live and restarting nodes (a restarting agent's
	// containers keep running), sorted by service and index.
	Replicas() []Replica
	// Changed returns a channel closed at the next change.
	Changed() <-chan struct{}
}

// Set is an in-memory View that holders update directly: the single-node agent and tests use
// it, and gossip keeps one per agent.
type Set struct {
	mu sync.Mutex
	// guarded by mu:
	nodes    map[string]Node
	replicas map[string]map[replicaKey]Replica // node → replicas
	images   map[string]map[uint64]struct{}    // node → advertised image keys (images.go)
	changed  chan struct{}
}

type replicaKey struct {
	service string
	index   int32
}

var _ View = (*Set)(nil)

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{nodes: map[string]Node{}, replicas: map[string]map[replicaKey]Replica{}, changed: make(chan struct{})}
}

// SetNode adds or replaces a node.
func (s *Set) SetNode(n Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[n.Name] = n
	s.notifyLocked()
}

// RemoveNode forgets a node and its replicas.
func (s *Set) RemoveNode(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, name)
	delete(s.replicas, name)
	delete(s.images, name)
	s.notifyLocked()
}

// SetNodeReplicas replaces everything node reports.
func (s *Set) SetNodeReplicas(node string, rs []Replica) {
	m := make(map[replicaKey]Replica, len(rs))
	for _, r := range rs {
		m[replicaKey{r.Service, r.Index}] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas[node] = m
	s.notifyLocked()
}

// NodeReplicas returns what node reports, alive or not.
func (s *Set) NodeReplicas(node string) []Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Replica, 0, len(s.replicas[node]))
	for _, r := range s.replicas[node] {
		out = append(out, r)
	}
	sortReplicas(out)
	return out
}

// Nodes implements View.
func (s *Set) Nodes() []Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Replicas implements View: only replicas of nodes known and alive or restarting.
func (s *Set) Replicas() []Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Replica
	for node, rs := range s.replicas {
		if n, ok := s.nodes[node]; !ok || !(n.Alive || n.State == StateRestarting) {
			continue
		}
		for _, r := range rs {
			out = append(out, r)
		}
	}
	sortReplicas(out)
	return out
}

// Changed implements View.
func (s *Set) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Set) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func sortReplicas(rs []Replica) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Service != rs[j].Service {
			return rs[i].Service < rs[j].Service
		}
		if rs[i].Index != rs[j].Index {
			return rs[i].Index < rs[j].Index
		}
		return rs[i].Node < rs[j].Node
	})
}

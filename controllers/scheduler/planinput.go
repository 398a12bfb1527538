package scheduler

import (
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// NodeInfo is what placement needs to know of a node.
type NodeInfo struct {
	Name   string
	Labels map[string]string
	// Healthy: Ready by pkg/nodehealth: it takes new replicas.
	Healthy bool
	// Held: not Healthy, but the replicas there stay where they are (its agent is restarting
	// within the grace, it is not observed, or it is lost while the disruption brake holds).
	// A node neither Healthy nor Held is lost: its replicas are placed elsewhere.
	Held bool
	// Unschedulable (cordoned): no new replicas; the ones there stay.
	Unschedulable bool
	// Drain: no new replicas, and the ones there are moved (new one first, as in an update).
	Drain bool
	// NoRuntime: the node's agent runs without Docker (control plane only) and takes no replicas.
	NoRuntime bool
	// Since is when the node entered its current state (for a lost node: since when it is
	// lost), when known.
	Since time.Time
}

// ReplicaInfo is the observed state of the replica of one assignment.
type ReplicaInfo struct {
	Node     string
	SpecHash string
	Ready    bool
	// Failed: the replica cannot become ready without an operator (image missing, crash loop,
	// port conflict, missing volume or secret, or unhealthy through repeated restarts). Other create errors are retried and only fail the rollout through the progress deadline.
	Failed  bool
	Reason  v1.ConditionReason
	Message string
}

// Input is everything the planner looks at for one Service.
type Input struct {
	Desired        int32
	SpecHash       string
	NodeSelector   map[string]string
	MaxPerNode     int32
	MaxSurge       int32
	MaxUnavailable int32
	// Assignments is the current placement (status.assignments).
	Assignments []v1.Assignment
	// Observed maps a replica index to what its node reports.
	Observed map[int32]ReplicaInfo
	Nodes    []NodeInfo
	// Load counts other Services' replicas per node, to break ties towards emptier nodes.
	Load map[string]int
	// SinceProgress is how long the rollout has made no progress; ProgressDeadline is how long
	// that may last before the rollout is failed (0: no deadline).
	SinceProgress    time.Duration
	ProgressDeadline time.Duration
	// Sticky: the replicas mount a named volume that lives on their node
	// (v1.ServiceSpec.StickyVolumes). A replica is then never moved off its node: on a lost
	// node it waits (v1.ReasonWaitingForNode), on a draining node or one its nodeSelector no
	// longer matches it stays, and spreading back leaves it alone.
	Sticky bool
	// Now is the scheduler's clock reading: a waiting replica whose node has no "since" waits
	// since now.
	Now time.Time
	// CoPlace, for a Service sharing another's network namespace, restricts it to the owner's
	// nodes (docs/egress.md). Nil: no restriction.
	CoPlace *CoPlacement
	// Avoid: nodes where this Service's egress healing gave up: its replicas leave them and
	// none is placed there (docs/egress.md). Nil: none.
	Avoid map[string]bool
	// Global (spec.mode global): Desired is ignored; one replica runs on every eligible node
	// (plus the nodes where a replica may stay: cordoned, held, or waiting for its volume).
	Global bool
	// HostPorts are the node ports a replica holds (v1.ServiceSpec.HostPorts): at most one
	// replica per node, and none on a node where another Service holds one of them.
	HostPorts []string
	// PortsTaken maps a node to the host ports other Services' replicas hold there, and by
	// which Service ("53/udp" → "dns"). Only the keys of HostPorts matter.
	PortsTaken map[string]map[string]string
	// HoldBack, when set, is why the Service's dependsOn conditions do not hold: no replica
	// is created (and no ready one removed for an update) until they do.
	HoldBack string
	// ImageHolders are the nodes that advertise the Service's image through gossip
	// (docs/images.md): among nodes otherwise equal for placement (same count of this
	// Service, same load), a holder is picked before a node that would copy the image. It
	// never overrides the spread, maxPerNode or the selectors. Nil: no preference.
	ImageHolders map[string]bool
}

// Plan is the planner's answer.
type Plan struct {
	// Assignments is the new placement, sorted by index.
	Assignments []v1.Assignment
	// Unplaced is how many replicas found no node.
	Unplaced int32
	// Progressing is the Progressing condition (LastTransitionTime left to the caller).
	Progressing v1.Condition
	// Complete: every replica runs the current spec, is ready, and is where it should be.
	Complete bool
	// Waiting lists the sticky replicas kept on lost nodes ("1 on n2 (lost since ...)").
	Waiting []string
	// Pinned lists the sticky replicas kept on draining nodes ("1 on n2"): they block a drain.
	Pinned []string
	// Desired is the number of replicas planned for: Input.Desired, or for a global Service
	// the number of nodes it targets.
	Desired int32
}

// failedReasons are the observed reasons that mean a replica will not become ready by itself.
var failedReasons = map[v1.ConditionReason]bool{
	v1.ReasonImageNotFound:  true,
	v1.ReasonCrashLoop:      true,
	v1.ReasonPortConflict:   true,
	v1.ReasonVolumeNotFound: true,
	v1.ReasonSecretNotFound: true,
	// The node's agent does not allow the spec's host access: only a new spec or new flags help.
	v1.ReasonHostAccessDenied: true,
}

// IsFailedReason reports whether an observed replica reason means the replica is stuck.
func IsFailedReason(reason v1.ConditionReason) bool { return failedReasons[reason] }

package v1

import "time"

// Service is a containerised workload: an image run as N replicas across the nodes, with health
// checks, routes through Traefik, placement rules and rolling updates.
type Service struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ServiceSpec   `json:"spec"`
	Status   ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec is what the operator asks for.
type ServiceSpec struct {
	// Image is the container image reference. Required, unless upstreams are set (exactly one
	// of the two).
	Image string `json:"image"`
	// Upstreams replace the image with outside endpoints served at the Service's mesh address
	// (docs/proxy.md). No replica runs.
	Upstreams []Upstream `json:"upstreams,omitempty"`
	// Failover tunes the per-request proxy of appProtocol http ports and upstreams
	// (docs/proxy.md). Defaulted when either is present.
	Failover *Failover `json:"failover,omitempty"`
	// Command overrides the image's entrypoint.
	Command []string `json:"command,omitempty"`
	// Args overrides the image's cmd.
	Args []string `json:"args,omitempty"`
	// Env is the container's environment.
	Env []EnvVar `json:"env,omitempty"`
	// Replicas is how many copies run across the cluster. Default 1; 0 is allowed (scaled down).
	Replicas *int32 `json:"replicas,omitempty"`
	// Ports the container listens on. Each is published on an ephemeral host port so that
	// Traefik on any node can reach it at the node's advertise address.
	Ports []ServicePort `json:"ports,omitempty"`
	// HealthCheck decides when a replica is healthy. None: running means healthy.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// Routes are what Traefik exposes.
	Routes *Routes `json:"routes,omitempty"`
	// Placement restricts and spreads replicas.
	Placement *Placement `json:"placement,omitempty"`
	// Networks are Docker networks the containers join, created on demand.
	Networks []string `json:"networks,omitempty"`
	// Volumes are named volumes or bind mounts.
	Volumes []VolumeMount `json:"volumes,omitempty"`
	// Resources limits CPU and memory.
	Resources *Resources `json:"resources,omitempty"`
	// Update tunes rolling updates.
	Update *UpdateStrategy `json:"update,omitempty"`

	// HostAccess is the one visible opt-in for anything that reaches into the host: bind mounts
	// (a volume whose source is an absolute path), privileged, hostNetwork, hostPID, hostIPC,
	// devices and capAdd beyond Docker's default set. A Service using any of them without it is refused; sensitive ones
	// (/, /etc, the Docker socket, the agent's data dir, privileged, ...) also need the agent to
	// allow them (--security.allowHostAccess or --security.hostPaths). See docs/security.md
	// "Host access". Default false.
	HostAccess bool `json:"hostAccess,omitempty"`
	// Privileged runs the containers privileged (every capability, every device): root on the
	// node. Needs hostAccess and --security.allowHostAccess. Default false.
	Privileged bool `json:"privileged,omitempty"`
	// HostNetwork runs the containers in the node's network namespace: nothing is published,
	// a replica answers on its node's advertise address at the container port. Needs hostAccess
	// and --security.allowHostAccess, no spec.networks and placement.maxPerNode 1. Default false.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// HostPID runs the containers in the node's PID namespace. Needs hostAccess and
	// --security.allowHostAccess. Default false.
	HostPID bool `json:"hostPID,omitempty"`
	// CapAdd adds Linux capabilities ("NET_ADMIN"; the "CAP_" prefix is optional). One outside
	// Docker's default set needs hostAccess and --security.allowHostAccess. Default none.
	CapAdd []string `json:"capAdd,omitempty"`
	// CapDrop drops Linux capabilities ("ALL" drops every one). Always allowed. Default none.
	CapDrop []string `json:"capDrop,omitempty"`

	// Network shares another Service's network namespace ({mode: "service:<name>"}, Docker's
	// container:<id>; docs/egress.md). Default nil: the container's own namespace.
	Network *NetworkSpec `json:"network,omitempty"`
	// EgressCheck probes the egress this Service provides to others (docs/egress.md). Default nil.
	EgressCheck *EgressCheck `json:"egressCheck,omitempty"`

	// Mode is "replicated" (the default, also ""): spec.replicas copies spread over the nodes;
	// or "global": one replica on every node that matches placement.nodeSelector, following
	// nodes as they join, leave, drain or change labels (spec.replicas must be empty then).
	Mode ServiceMode `json:"mode,omitempty"`
	// DependsOn holds the replicas of this Service back until each named Service meets its
	// condition cluster-wide (docs/spec.md, "dependsOn"). Cycles are refused. Default none.
	DependsOn []Dependency `json:"dependsOn,omitempty"`
	// HostIPC runs the containers in the node's IPC namespace. Needs hostAccess and
	// --security.allowHostAccess. Default false.
	HostIPC bool `json:"hostIPC,omitempty"`

	// Container options (containeroptions.go). Each is omitted when unset, so that a spec that
	// does not use them keeps its spec hash.
	ContainerOptions `json:",inline"`
	// --- rollout restart (docs/ctl.md "rollout restart") ---
	// RestartedAt is written by `ctl rollout restart`: it enters the spec hash, so a new value
	// replaces every replica, rolling as spec.update says. A PUT that omits it keeps the stored
	// one (so that applying the original file after a restart does not restart again).
	RestartedAt *time.Time `json:"restartedAt,omitempty"`
	// Files puts keys of Configs and Secrets in the containers as files (docs/spec.md,
	// "files"): copied into each container after it is created and before it starts, never
	// written on the node's disk. A change of a referenced Config or Secret (or of this list)
	// rolls the Service. Default none.
	Files []FileMount `json:"files,omitempty"`
}

// EnvVar is one environment variable: a literal value or a reference to a Secret's key.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
}

// SecretKeyRef names one key of a Secret.
type SecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	// Restart says what a change of the Secret does to running replicas: "rolling" (the
	// default, also ""): the Service is rolled like an image update; "never": nothing, the new
	// value is used only when a container is created for another reason.
	Restart SecretRestart `json:"restart,omitempty"`
}

// SecretRestart is what a Secret change does to the replicas that reference it.
type SecretRestart string

// Secret restart policies.
const (
	SecretRestartRolling SecretRestart = "rolling"
	SecretRestartNever   SecretRestart = "never"
)

// Rolls reports whether a change of the referenced Secret rolls the Service ("" or "rolling").
func (r *SecretKeyRef) Rolls() bool { return r.Restart != SecretRestartNever }

// Protocol is tcp or udp.
type Protocol string

// Protocols.
const (
	ProtocolTCP Protocol = "tcp"
	ProtocolUDP Protocol = "udp"
)

// ServicePort is a port the container listens on.
type ServicePort struct {
	// Name identifies the port in routes and health checks. Required when there is more than one.
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	// Protocol defaults to tcp.
	Protocol Protocol `json:"protocol,omitempty"`
	// AppProtocol "http" makes the mesh proxy the port per request (docs/proxy.md). Default ""
	// (per connection); "http" on the ports of an upstream Service.
	AppProtocol string `json:"appProtocol,omitempty"`
	// HostPort publishes the port on this fixed port of the node's publish address (Compose's
	// "53:53/udp"), instead of an ephemeral one. The scheduler never places two replicas that
	// need the same hostPort and protocol on one node, of this Service or another. Default 0:
	// an ephemeral port.
	HostPort int32 `json:"hostPort,omitempty"`
}

// HealthCheck is one of HTTP, TCP or exec, with timing.
type HealthCheck struct {
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	TCP  *TCPHealthCheck  `json:"tcp,omitempty"`
	Exec *ExecHealthCheck `json:"exec,omitempty"`
	// Interval between probes. Default 2s.
	Interval *Duration `json:"interval,omitempty"`
	// Timeout of one probe. Default 1s.
	Timeout *Duration `json:"timeout,omitempty"`
	// Retries: consecutive failures before a replica is unhealthy. Default 3.
	Retries *int32 `json:"retries,omitempty"`
	// StartPeriod during which failures do not count. Default 0s.
	StartPeriod *Duration `json:"startPeriod,omitempty"`
}

// HTTPHealthCheck is healthy on a 2xx or 3xx answer.
type HTTPHealthCheck struct {
	// Path defaults to "/".
	Path string `json:"path,omitempty"`
	// Port is a port name or number of the container. Default: the first port.
	Port PortRef `json:"port,omitempty"`
}

// TCPHealthCheck is healthy when the port accepts a connection.
type TCPHealthCheck struct {
	// Port is a port name or number of the container. Default: the first port.
	Port PortRef `json:"port,omitempty"`
}

// ExecHealthCheck is healthy when the command exits 0 inside the container.
type ExecHealthCheck struct {
	Command []string `json:"command"`
}

// Routes are the service's Traefik routes.
type Routes struct {
	HTTP []HTTPRoute `json:"http,omitempty"`
	TCP  []TCPRoute  `json:"tcp,omitempty"`
	UDP  []UDPRoute  `json:"udp,omitempty"`
}

// HTTPRoute sends requests for host (and path prefix) to a port of the service.
type HTTPRoute struct {
	Host       string `json:"host"`
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Port is a port name or number. Default: the first tcp port.
	Port        PortRef   `json:"port,omitempty"`
	EntryPoints []string  `json:"entryPoints,omitempty"`
	TLS         *RouteTLS `json:"tls,omitempty"`
	// Priority overrides Traefik's rule-length priority.
	Priority int `json:"priority,omitempty"`
	// Middlewares asked for on this route.
	Middlewares *HTTPMiddlewares `json:"middlewares,omitempty"`
	// Sticky enables cookie-based sticky sessions.
	Sticky bool `json:"sticky,omitempty"`
	// HealthCheck makes Traefik probe the servers itself too (path).
	HealthCheckPath string `json:"healthCheckPath,omitempty"`
}

// RouteTLS turns TLS on for a route.
type RouteTLS struct {
	CertResolver string `json:"certResolver,omitempty"`
}

// HTTPMiddlewares are the middlewares a route can ask for.
type HTTPMiddlewares struct {
	RedirectToHTTPS bool              `json:"redirectToHTTPS,omitempty"`
	StripPrefix     bool              `json:"stripPrefix,omitempty"`
	Headers         map[string]string `json:"headers,omitempty"`
	// BasicAuthSecret names a Secret whose keys are user names and values htpasswd hashes.
	BasicAuthSecret string     `json:"basicAuthSecret,omitempty"`
	RateLimit       *RateLimit `json:"rateLimit,omitempty"`
	// Retry attempts on a failed upstream connection.
	RetryAttempts int `json:"retryAttempts,omitempty"`
}

// RateLimit is Traefik's rateLimit middleware.
type RateLimit struct {
	Average int64 `json:"average"`
	Burst   int64 `json:"burst,omitempty"`
}

// TCPRoute routes TCP by SNI on an entry point.
type TCPRoute struct {
	// HostSNI is a host name or "*".
	HostSNI string `json:"hostSNI"`
	// Port is a port name or number. Default: the first tcp port.
	Port       PortRef `json:"port,omitempty"`
	EntryPoint string  `json:"entryPoint"`
	// Passthrough leaves TLS to the container.
	Passthrough bool `json:"passthrough,omitempty"`
}

// UDPRoute sends an entry point's UDP traffic to a port.
type UDPRoute struct {
	// Port is a port name or number. Default: the first udp port.
	Port       PortRef `json:"port,omitempty"`
	EntryPoint string  `json:"entryPoint"`
}

// Placement restricts where replicas run.
type Placement struct {
	// NodeSelector: a node must carry all of these labels.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// MaxPerNode caps replicas of this service on one node. 0: no cap.
	MaxPerNode int32 `json:"maxPerNode,omitempty"`
	// Volumes says what happens to a replica that mounts a named volume when its node is lost
	// or drained: "" or "sticky" (VolumesSticky, the default): it stays bound to the node that
	// holds the volume and waits for it (ReasonWaitingForNode); "recreate" (VolumesRecreate):
	// it is re-placed like any replica, on a new empty volume, and the data on the old node is
	// abandoned. Services with only bind mounts or no volumes are always re-placed.
	Volumes VolumePolicy `json:"volumes,omitempty"`
}

// VolumePolicy is placement.volumes.
type VolumePolicy string

// Volume policies.
const (
	VolumesSticky   VolumePolicy = "sticky"
	VolumesRecreate VolumePolicy = "recreate"
)

// StickyVolumes reports whether the replicas of s are bound to the node holding their named
// volume: s mounts at least one named (not bind) volume and placement.volumes is not recreate.
func (s *ServiceSpec) StickyVolumes() bool {
	if s.Placement != nil && s.Placement.Volumes == VolumesRecreate {
		return false
	}
	for _, v := range s.Volumes {
		if !v.IsBindMount() {
			return true
		}
	}
	return false
}

// VolumeMount is a named volume (source is a name) or a bind mount (source is an absolute path).
type VolumeMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Resources limits a container.
type Resources struct {
	// CPUs, as a decimal ("0.5").
	CPUs string `json:"cpus,omitempty"`
	// MemoryMB is the memory limit in MiB.
	MemoryMB int64 `json:"memoryMB,omitempty"`
}

// UpdateOrder says whether the new replica starts before the old one stops.
type UpdateOrder string

// Update orders.
const (
	StartFirst UpdateOrder = "start-first"
	StopFirst  UpdateOrder = "stop-first"
)

// UpdateStrategy tunes rolling updates.
type UpdateStrategy struct {
	// MaxUnavailable replicas during an update. Default 0 with start-first, 1 with stop-first.
	MaxUnavailable *int32 `json:"maxUnavailable,omitempty"`
	// MaxSurge extra replicas during an update. Default 1 with start-first, 0 with stop-first.
	MaxSurge *int32 `json:"maxSurge,omitempty"`
	// Order defaults to start-first.
	Order UpdateOrder `json:"order,omitempty"`
}

// Service condition types.
const (
	ServiceReady       ConditionType = "Ready"
	ServiceProgressing ConditionType = "Progressing"
	ServiceDegraded    ConditionType = "Degraded"
)

// Reasons for Service conditions an operator can act on.
const (
	ReasonImageNotFound    ConditionReason = "ImageNotFound"
	ReasonPortConflict     ConditionReason = "PortConflict"
	ReasonCrashLoop        ConditionReason = "CrashLoop"
	ReasonUnschedulable    ConditionReason = "Unschedulable"
	ReasonUnhealthy        ConditionReason = "Unhealthy"
	ReasonRollingUpdate    ConditionReason = "RollingUpdate"
	ReasonRolloutComplete  ConditionReason = "RolloutComplete"
	ReasonRolloutFailed    ConditionReason = "RolloutFailed"
	ReasonAllReplicasReady ConditionReason = "AllReplicasReady"
	ReasonReplicasNotReady ConditionReason = "ReplicasNotReady"
	ReasonVolumeNotFound   ConditionReason = "VolumeNotFound"
	ReasonScaledToZero     ConditionReason = "ScaledToZero"
	// ReasonDisruptionBrake: more than half of the nodes look lost at once, so the scheduler
	// re-places nothing (the view is more likely wrong than half the cluster gone).
	ReasonDisruptionBrake ConditionReason = "DisruptionBrake"
	// ReasonWaitingForNode: a replica bound to its node by a named volume (placement.volumes
	// sticky) is not re-placed while that node is lost; it waits for the node to return.
	ReasonWaitingForNode ConditionReason = "WaitingForNode"
)

// ServiceStatus is what the cluster observed.
type ServiceStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// DesiredReplicas is, for a global Service, how many replicas the scheduler targets (one per
	// eligible node). Written by the scheduler only; 0 for replicated Services.
	DesiredReplicas int32           `json:"desiredReplicas,omitempty"`
	Replicas        int32           `json:"replicas"`
	ReadyReplicas   int32           `json:"readyReplicas"`
	UpdatedReplicas int32           `json:"updatedReplicas"`
	ReplicaStatuses []ReplicaStatus `json:"replicaStatuses,omitempty"`
	// Assignments is the scheduler's placement of each replica index on a node. It lives in the
	// store so that every node can show it and a new scheduler continues where the old one stopped.
	Assignments []Assignment `json:"assignments,omitempty"`
	// CurrentRevision and PreviousRevision are the container-defining specs the scheduler rolled
	// out last and before that, kept in status (which apply does not overwrite) so that `ctl
	// rollout undo` can return to the previous one and nodes can still run old replicas during an
	// update. Written by the scheduler only.
	CurrentRevision  *ServiceRevision `json:"currentRevision,omitempty"`
	PreviousRevision *ServiceRevision `json:"previousRevision,omitempty"`
	// --- rollout history (docs/ctl.md "rollout history") ---
	// RevisionHistory is the revisions before the current one, oldest first, at most the
	// scheduler's history limit (default 10), each with its number and the container-defining
	// part of its spec (replicas, routes, placement and update are not kept). A revision rolled
	// out again (undo) leaves the history and becomes current with a new number. Written by the
	// scheduler only.
	RevisionHistory []ServiceRevision `json:"revisionHistory,omitempty"`
	// VirtualIP is the Service's stable mesh address, allocated from the agents' --mesh.cidr
	// when the Service is first seen and kept until it is deleted (docs/mesh.md, "Virtual
	// IPs"). Written by the mesh controller only. Empty until allocated.
	VirtualIP string `json:"virtualIP,omitempty"`
	// ReplicaVirtualIPs is one mesh address per replica index, sorted by index. An index that
	// scaling down removed keeps its address until the Service is deleted, so that scaling
	// up again gives the replica back the address it had. Written by the mesh controller only.
	ReplicaVirtualIPs []ReplicaVirtualIP `json:"replicaVirtualIPs,omitempty"`
	Conditions        []Condition        `json:"conditions,omitempty"`
}

// ReplicaVirtualIP is the mesh address of one replica index (`<svc>-<index>.<svc>`).
type ReplicaVirtualIP struct {
	Index int32  `json:"index"`
	IP    string `json:"ip"`
}

// ReplicaState is a replica's container state.
type ReplicaState string

// Replica states.
const (
	ReplicaPending ReplicaState = "pending"
	ReplicaCreated ReplicaState = "created"
	ReplicaRunning ReplicaState = "running"
	ReplicaExited  ReplicaState = "exited"
	ReplicaFailed  ReplicaState = "failed"
	// ReplicaTerminating: the container still runs but is being drained before it is stopped;
	// it receives no new traffic.
	ReplicaTerminating ReplicaState = "terminating"
	// ReplicaWaitingForNode: the replica holds a named volume on a lost node and waits for it
	// (placement.volumes: sticky); no container runs for it anywhere. Reported by the status
	// controller from the scheduler's assignment, never observed on a node.
	ReplicaWaitingForNode ReplicaState = "WaitingForNode"
)

// Health is a replica's health.
type Health string

// Health values.
const (
	HealthHealthy   Health = "healthy"
	HealthUnhealthy Health = "unhealthy"
	HealthStarting  Health = "starting"
	HealthNone      Health = "none"
)

// ReplicaStatus is one replica as observed on its node.
type ReplicaStatus struct {
	Index       int32        `json:"index"`
	Node        string       `json:"node"`
	ContainerID string       `json:"containerID,omitempty"`
	State       ReplicaState `json:"state"`
	Health      Health       `json:"health,omitempty"`
	// Address is host:port of the first published port, reachable from other nodes.
	Address  string `json:"address,omitempty"`
	SpecHash string `json:"specHash,omitempty"`
	Message  string `json:"message,omitempty"`
}

func (s *Service) GetConditions() *[]Condition { return &s.Status.Conditions }

// DesiredReplicas returns spec.replicas after defaulting. For a global Service it is what the
// scheduler last targeted (status.desiredReplicas: one per eligible node).
func (s *Service) DesiredReplicas() int32 {
	if s.Spec.IsGlobal() && !s.Spec.IsUpstreamService() {
		return s.Status.DesiredReplicas
	}
	return s.Spec.DesiredReplicas()
}

// DesiredReplicas returns spec.replicas after defaulting. A global Service's count depends on
// the nodes: use Service.DesiredReplicas.
func (s *ServiceSpec) DesiredReplicas() int32 {
	if s.IsUpstreamService() {
		return 0 // no container runs: the mesh proxies its upstreams (docs/proxy.md)
	}
	if s.Replicas == nil {
		return 1
	}
	return *s.Replicas
}

// ServiceRevision is one spec a Service ran, with its spec hash.
type ServiceRevision struct {
	SpecHash string      `json:"specHash"`
	Spec     ServiceSpec `json:"spec"`
	// --- rollout history ---
	// Revision numbers the Service's revisions 1, 2, ... in the order they were rolled out
	// (0: written before revisions were numbered).
	Revision int64 `json:"revision,omitempty"`
	// CreatedAt is when the scheduler first saw the revision.
	CreatedAt *time.Time `json:"createdAt,omitempty"`
}

// Assignment places one replica of a Service on a node.
type Assignment struct {
	Index int32  `json:"index"`
	Node  string `json:"node"`
	// SpecHash is the spec the replica should run; during a rolling update old and new coexist.
	SpecHash string `json:"specHash,omitempty"`
	// WaitingSince is set while the replica waits for its lost node because it holds a named
	// volume there (ReasonWaitingForNode): since when the node is lost, or when the scheduler
	// first saw it lost. Cleared when the node is back.
	WaitingSince *time.Time `json:"waitingSince,omitempty"`
}

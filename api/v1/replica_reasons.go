package v1

// HealthUnknown: the node cannot tell (its Docker engine does not answer and no probe of the
// agent's own vouches for the replica). Such a replica is not ready: it receives no traffic.
const HealthUnknown Health = "unknown"

// Reasons a node reports on its replicas.
const (
	// ReasonImagePulling: the replica waits for its image, pulled in the background; the
	// message shows the pull's progress.
	ReasonImagePulling ConditionReason = "ImagePulling"
	// ReasonEngineUnavailable: the node's Docker engine does not answer; the replica is shown
	// as last seen, with the health the agent's probes still see.
	ReasonEngineUnavailable ConditionReason = "EngineUnavailable"
	// ReasonExited: the replica's container exited and is being restarted (after a few
	// restarts in a row it is ReasonCrashLoop).
	ReasonExited ConditionReason = "Exited"
	// ReasonCreateFailed: the replica's container could not be created or started for a reason
	// none of the specific ones names; the message has the engine's error.
	ReasonCreateFailed ConditionReason = "CreateFailed"
)

// ReasonHostAccessDenied: the node's agent does not allow the host access the replica's spec
// asks for (a bind mount, privileged, a host namespace, an added capability); the message names
// the field and the fix (spec.hostAccess or the agent's --security flag). The replica is not
// created on that node.
const ReasonHostAccessDenied ConditionReason = "HostAccessDenied"

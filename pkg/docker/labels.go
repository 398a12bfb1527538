package docker

// Labels every container the agent creates carries (DESIGN.md, external contract). The agent
// never touches a container without them.
const (
	LabelService  = "constellation.service"
	LabelReplica  = "constellation.replica"
	LabelNode     = "constellation.node"
	LabelSpecHash = "constellation.spec-hash"
	// LabelNetnsOwner is on a container created in another's network namespace
	// (spec.network): the owner container's ID it joined (docs/egress.md).
	LabelNetnsOwner = "constellation.netns-owner"
)

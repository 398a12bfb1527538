package v1

import (
	"fmt"
	"strconv"
)

// APILevel numbers what this build's state machine stores faithfully. Every member applies
// every raft entry with its own code, so in a cluster being upgraded one agent at a time an
// object that an older member does not know (a new kind) or would store without some of its
// fields (a new field dropped when it re-encodes the object) must not be written until every
// member can: the members' stores would differ from then on. Admission refuses such a write
// until the lowest level among the cluster's Nodes is high enough (RequiredLevel).
//
// Raise it, and add the feature to RequiredLevel, whenever a kind or a stored field is added.
//
//	1  the baseline: every agent before levels were recorded (Node without the annotation)
//	2  kinds Config, Job, CronJob; Service spec.files
const APILevel = 2

// AnnotationAPILevel on a Node is the APILevel of the agent that registered it last.
const AnnotationAPILevel = "constellation.apiLevel"

// NodeAPILevel is the level a Node's agent announced; 1 when it announced none (an agent from
// before levels, or a Node object written by hand).
func NodeAPILevel(n *Node) int {
	if v, ok := n.Metadata.Annotations[AnnotationAPILevel]; ok {
		if l, err := strconv.Atoi(v); err == nil && l >= 1 {
			return l
		}
	}
	return 1
}

// RequiredLevel is the lowest APILevel whose members store obj exactly, and the field (or
// "kind") that needs it: "" when the baseline does.
func RequiredLevel(obj Object) (int, string) {
	switch o := obj.(type) {
	case *Config, *Job, *CronJob:
		return 2, "kind"
	case *Service:
		if len(o.Spec.Files) > 0 {
			return 2, "spec.files"
		}
	}
	return 1, ""
}

// LevelError explains why a write waits for an upgrade: field needs level need, and the named
// node's agent is at a lower one.
func LevelError(obj Object, field string, need int, node string, have int, version string) *FieldError {
	what := field
	if field == "kind" {
		what = "kind " + obj.GetTypeMeta().Kind
	}
	if version == "" {
		version = "unknown"
	}
	return &FieldError{Field: field, Message: fmt.Sprintf(
		"%s needs every member at API level %d, and node %s runs agent %s (level %d): upgrade every agent first (docs/install.md, \"Upgrade in place\")",
		what, need, node, version, have)}
}

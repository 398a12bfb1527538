package agent

import (
	"context"
	"strconv"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// announceLevel records this agent's API level on its Node (v1.AnnotationAPILevel), so that
// every member's admission knows what the whole cluster can store.
func announceLevel(n *v1.Node) {
	if n.Metadata.Annotations == nil {
		n.Metadata.Annotations = map[string]string{}
	}
	n.Metadata.Annotations[v1.AnnotationAPILevel] = strconv.Itoa(v1.APILevel)
}

// admitLevel refuses a write that some member could not store as it is (v1.RequiredLevel): a
// kind or field newer than the lowest API level among the cluster's Nodes. A Node counts until
// it is removed (`ctl node remove`), down or not: it applies the log when it comes back.
func (a *Agent) admitLevel(ctx context.Context, obj v1.Object) *v1.FieldError {
	need, field := v1.RequiredLevel(obj)
	if need <= 1 {
		return nil
	}
	nodes, _, err := a.store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return &v1.FieldError{Field: field, Message: "cannot check that every member supports it: " + err.Error()}
	}
	return lowestLevel(obj, field, need, nodes)
}

// lowestLevel is admitLevel's decision over the listed Nodes: the first one (by name) below
// need is named in the error.
func lowestLevel(obj v1.Object, field string, need int, nodes []v1.Object) *v1.FieldError {
	for _, o := range nodes {
		n, ok := o.(*v1.Node)
		if !ok {
			continue
		}
		if have := v1.NodeAPILevel(n); have < need {
			return v1.LevelError(obj, field, need, n.Metadata.Name, have, n.Status.AgentVersion)
		}
	}
	return nil
}

package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// ObservedPath is the agent's view of observed state: every node's replicas as gossip carries
// them (an agent endpoint, not part of /apis/v1).
const ObservedPath = "/debug/observed"

// ObservedReplica is one container the agent's gossip view knows of: its Service, replica
// index, node and state (running, terminating, ...). It is the subset of the agent's
// observed.Replica that clients need; unknown fields are ignored.
type ObservedReplica struct {
	Service     string `json:"service"`
	Index       int32  `json:"index"`
	Node        string `json:"node"`
	ContainerID string `json:"containerID,omitempty"`
	State       string `json:"state"`
	Health      string `json:"health,omitempty"`
}

// ObservedReplicas returns the replicas the agent's gossip view holds, on every node. A server
// without the endpoint answers an *Error with StatusCode 404.
func (c *Client) ObservedReplicas(ctx context.Context) ([]ObservedReplica, error) {
	b, _, err := c.call(ctx, http.MethodGet, ObservedPath, nil, nil)
	if err != nil {
		return nil, err
	}
	var wire struct {
		Replicas []ObservedReplica `json:"replicas"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ObservedPath, err)
	}
	return wire.Replicas, nil
}

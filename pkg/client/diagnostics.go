package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// Diagnostics asks node's agent for its checks (`ctl doctor`); the agent ctl talks to forwards
// the request when node is another.
func (c *Client) Diagnostics(ctx context.Context, node string) (*nodeapi.Diagnostics, error) {
	b, _, err := c.call(ctx, http.MethodGet, nodeapi.DiagnosticsPath(node), nil, nil)
	if err != nil {
		return nil, err
	}
	var d nodeapi.Diagnostics
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("node %s: decode diagnostics: %w", node, err)
	}
	return &d, nil
}

// ObservedNode is a node the agent's gossip view knows of (the subset clients need).
type ObservedNode struct {
	Name  string `json:"name"`
	Alive bool   `json:"alive"`
	State string `json:"state"`
}

// ObservedNodes returns the nodes the agent's gossip view holds: it answers without a raft
// quorum, where listing Node objects may not.
func (c *Client) ObservedNodes(ctx context.Context) ([]ObservedNode, error) {
	b, _, err := c.call(ctx, http.MethodGet, ObservedPath, nil, nil)
	if err != nil {
		return nil, err
	}
	var wire struct {
		Nodes []ObservedNode `json:"nodes"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ObservedPath, err)
	}
	return wire.Nodes, nil
}

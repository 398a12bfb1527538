package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// MeshPath is where an agent shows its mesh (read scope).
const MeshPath = "/api/mesh"

// MeshView is one agent's mesh as it serves it now.
type MeshView struct {
	// Node is the agent's node.
	Node string `json:"node"`
	// Enabled is false on a node that runs no mesh data plane (no Docker, --mesh.disabled).
	Enabled bool `json:"enabled"`
	// NameServer is the mesh name server's address ("10.213.0.1:53").
	NameServer string         `json:"nameServer,omitempty"`
	Listeners  []MeshListener `json:"listeners"`
}

// MeshListener is one virtual IP and port.
type MeshListener struct {
	VIP       string         `json:"vip"`
	Port      int            `json:"port"`
	Protocol  string         `json:"protocol"`
	Service   string         `json:"service"`
	Endpoints []MeshEndpoint `json:"endpoints"`
}

// MeshEndpoint is a replica behind a listener, as this node sees it.
type MeshEndpoint struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Healthy bool   `json:"healthy"`
	Local   bool   `json:"local"`
	// Active is how many connections (UDP: sessions) are open to it through this node.
	Active int64 `json:"active"`
	// Breaker is an HTTP listener's upstream circuit breaker on this node (closed, half-open,
	// open); empty for TCP and UDP listeners (docs/proxy.md).
	Breaker string `json:"breaker,omitempty"`
}

// Mesh returns the answering agent's mesh.
func (c *Client) Mesh(ctx context.Context) (*MeshView, error) {
	b, _, err := c.call(ctx, http.MethodGet, MeshPath, nil, nil)
	if err != nil {
		return nil, err
	}
	var v MeshView
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode mesh: %w", err)
	}
	return &v, nil
}

// ForServer returns a client like c for another server of the same cluster (the same token and
// trust in the cluster CA), e.g. another node's API address.
func (c *Client) ForServer(server string) (*Client, error) {
	cfg := c.cfg
	cfg.Server = server
	if c.trust != nil {
		c.trust.mu.Lock()
		if c.trust.ca != nil {
			cfg.CACert = pemEncode(c.trust.ca.Raw)
		}
		c.trust.mu.Unlock()
	}
	return New(cfg)
}

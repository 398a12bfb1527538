package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// Stats takes one sample of the resource use of the replicas on node (of service, or of every
// Service when ""), through the agent this client talks to (GET /node/{node}/stats). The node
// answers in about a second: the engine waits for a second CPU sample.
func (c *Client) Stats(ctx context.Context, node, service string) (*nodeapi.NodeStats, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	b, _, err := c.call(ctx, http.MethodGet, nodeapi.StatsPath(node), q, nil)
	if err != nil {
		return nil, err
	}
	var s nodeapi.NodeStats
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("node %s: decode stats: %w", node, err)
	}
	return &s, nil
}

package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// SnapshotPath is the agent's snapshot endpoint (pkg/agent.SnapshotPath).
const SnapshotPath = "/cluster/snapshot"

// Snapshot copies a snapshot file of the whole store (admin scope; any member answers with a
// linearizable read) to w and returns the bytes copied. The caller checks what it got with
// pkg/snapshot's decoder: a connection cut half-way leaves a truncated file it refuses.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.stream(ctx, http.MethodGet, SnapshotPath, nil, nil, http.Header{"Accept": {"application/octet-stream"}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("snapshot download from %s: %w", c.server, err)
	}
	return n, nil
}

package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// MemberRemoval is what RemoveNode did.
type MemberRemoval struct {
	Name string `json:"name"`
	// RemovedMember: the node was a raft member and no longer is.
	RemovedMember bool `json:"removedMember"`
	// DeletedNode: its Node object was deleted.
	DeletedNode bool `json:"deletedNode"`
}

// RemoveNodeOptions tune RemoveNode.
type RemoveNodeOptions struct {
	// Force removes a node that is still alive. The server never lets it break quorum.
	Force bool
}

// RemoveNode takes a node that is gone for good out of the cluster: its raft membership and its
// Node object (DELETE /cluster/members/NAME). A refusal (it would break quorum, the node is
// alive, it is the node answering) is a 409 *Error whose message says why.
func (c *Client) RemoveNode(ctx context.Context, name string, opts RemoveNodeOptions) (MemberRemoval, error) {
	var q url.Values
	if opts.Force {
		q = url.Values{"force": {"true"}}
	}
	b, _, err := c.call(ctx, http.MethodDelete, "/cluster/members/"+url.PathEscape(name), q, nil)
	if err != nil {
		return MemberRemoval{}, err
	}
	var out MemberRemoval
	if err := json.Unmarshal(b, &out); err != nil {
		return MemberRemoval{}, fmt.Errorf("decode server answer: %w", err)
	}
	return out, nil
}

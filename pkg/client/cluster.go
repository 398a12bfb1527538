package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

// GossipKeyRotationEvent is one step of a gossip key rotation, as the agent streams it.
type GossipKeyRotationEvent struct {
	// Step is "plan" (Members, Total, Primary), "skip" (Node, Message: a member not alive in
	// gossip), "install", "use" and "remove" (Node, Done of Total), "done" (Primary) or "error".
	Step    string   `json:"step"`
	Node    string   `json:"node,omitempty"`
	Done    int      `json:"done,omitempty"`
	Total   int      `json:"total,omitempty"`
	Members []string `json:"members,omitempty"`
	// Primary is the new key's fingerprint, never the key.
	Primary string `json:"primary,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// RotateGossipKey asks the agent to rotate the cluster's gossip encryption key
// (POST /cluster/gossip/rotate): a new key is installed on every live member, made primary
// everywhere, and the old keys are removed. progress, when not nil, sees each step as it
// happens. It returns the final "done" event, or an error carrying the agent's reason (which
// names the node that stopped the rotation).
func (c *Client) RotateGossipKey(ctx context.Context, progress func(GossipKeyRotationEvent)) (GossipKeyRotationEvent, error) {
	resp, err := c.do(ctx, http.MethodPost, "/cluster/gossip/rotate", nil, nil)
	if err != nil {
		return GossipKeyRotationEvent{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev GossipKeyRotationEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return GossipKeyRotationEvent{}, fmt.Errorf("decode server answer: %w", err)
		}
		switch ev.Step {
		case "error":
			return ev, errors.New(ev.Error)
		case "done":
			if progress != nil {
				progress(ev)
			}
			return ev, nil
		}
		if progress != nil {
			progress(ev)
		}
	}
	if err := sc.Err(); err != nil {
		return GossipKeyRotationEvent{}, &ConnError{Server: c.server, Err: err}
	}
	return GossipKeyRotationEvent{}, &ConnError{Server: c.server, Err: errors.New("the rotation's progress stream ended before it finished: run it again (it is idempotent)")}
}

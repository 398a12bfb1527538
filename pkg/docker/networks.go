// Networks the agent creates and removes.

package docker

import (
	"context"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// EnsureNetwork creates the bridge network name unless it exists. Networks the agent creates are
// labelled constellation.managed=true; an existing network of the same name is used as is.
func (c *Client) EnsureNetwork(ctx context.Context, name string) error {
	return c.call(ctx, "ensure network", name, c.t.Call, func(ctx context.Context) error { return c.ensureNetwork(ctx, name) })
}

func (c *Client) ensureNetwork(ctx context.Context, name string) error {
	if _, err := c.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return wrap(err, "inspect network %s", name)
	}
	_, err := c.api.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge", Labels: map[string]string{"constellation.managed": "true"},
	})
	if cerrdefs.IsConflict(err) || (err != nil && strings.Contains(err.Error(), "already exists")) {
		return nil
	}
	return wrap(err, "create network %s", name)
}

// RemoveNetwork removes a network; a network already gone is not an error.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return c.call(ctx, "remove network", name, c.t.Call, func(ctx context.Context) error {
		_, err := c.api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove network %s", name)
	})
}

package docker

import (
	"context"
	"errors"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ErrImageInUse is an image the engine refuses to remove: a container (running or not) uses it.
var ErrImageInUse = errors.New("docker: image in use")

// RemoveImage removes an image by ID or reference, never by force: an image a container uses
// is ErrImageInUse and stays. An image already gone is not an error.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	return c.call(ctx, "remove image", ref, c.t.Call, func(ctx context.Context) error {
		_, err := c.api.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
		switch {
		case err == nil, cerrdefs.IsNotFound(err):
			return nil
		case cerrdefs.IsConflict(err):
			return errors.Join(ErrImageInUse, wrap(err, "remove image %s", ref))
		}
		return wrap(err, "remove image %s", ref)
	})
}

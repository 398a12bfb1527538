package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// Images lists the images of node's engine.
func (c *Client) Images(ctx context.Context, node string) ([]nodeapi.ImageInfo, error) {
	b, _, err := c.call(ctx, http.MethodGet, nodeapi.ImagesPath(node), nil, nil)
	if err != nil {
		return nil, err
	}
	var l nodeapi.ImageList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("node %s: decode images: %w", node, err)
	}
	return l.Items, nil
}

// SaveImage copies `docker save REF` from node's engine to w and returns the bytes copied. A
// save the node failed half-way is an error (the archive is incomplete); an image the node
// does not have is a 404 naming it.
func (c *Client) SaveImage(ctx context.Context, node, ref string, w io.Writer) (int64, error) {
	return c.getArchive(ctx, nodeapi.ImageArchivePath(node), url.Values{"ref": {ref}}, w, fmt.Sprintf("node %s: save image %s", node, ref))
}

// LoadImage sends the `docker save` tar r to node, whose engine loads it.
func (c *Client) LoadImage(ctx context.Context, node string, r io.Reader) (nodeapi.ImageLoadResult, error) {
	var out nodeapi.ImageLoadResult
	err := c.putArchive(ctx, nodeapi.ImageArchivePath(node), nil, r, &out, fmt.Sprintf("node %s: load image", node))
	return out, err
}

// PullImage makes node fetch ref through its pull order (the other nodes, then the registry)
// and says where it came from. It has no overall timeout (an image takes a while): ctx
// bounds it.
func (c *Client) PullImage(ctx context.Context, node, ref string) (nodeapi.ImagePullResult, error) {
	var out nodeapi.ImagePullResult
	resp, err := c.stream(ctx, http.MethodPost, nodeapi.ImagePullPath(node), url.Values{"ref": {ref}}, nil, nil)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		return out, fmt.Errorf("node %s: pull image %s: %w", node, ref, err)
	}
	return out, nil
}

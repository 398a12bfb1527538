package client

import (
	"context"
	"encoding/json"
	"errors"
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
	resp, err := c.stream(ctx, http.MethodGet, nodeapi.ImageArchivePath(node), url.Values{"ref": {ref}}, nil, http.Header{"Accept": {"application/x-tar"}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("node %s: save image %s: %w", node, ref, err)
	}
	if msg := resp.Trailer.Get(nodeapi.TrailerError); msg != "" {
		return n, errors.New(msg)
	}
	return n, nil
}

// LoadImage sends the `docker save` tar r to node, whose engine loads it.
func (c *Client) LoadImage(ctx context.Context, node string, r io.Reader) (nodeapi.ImageLoadResult, error) {
	resp, err := c.stream(ctx, http.MethodPut, nodeapi.ImageArchivePath(node), nil, r, http.Header{"Content-Type": {"application/x-tar"}})
	if err != nil {
		return nodeapi.ImageLoadResult{}, err
	}
	defer resp.Body.Close()
	var out nodeapi.ImageLoadResult
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		return out, fmt.Errorf("node %s: load image: %w", node, err)
	}
	return out, nil
}

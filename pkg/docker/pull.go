// Pulling images from a registry, with progress summed over the layers (pullTracker).

package docker

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// HasImage reports whether ref is present locally (a short, bounded inspect).
func (c *Client) HasImage(ctx context.Context, ref string) (bool, error) {
	var ok bool
	err := c.call(ctx, "inspect image", ref, c.t.Call, func(ctx context.Context) error {
		_, err := c.api.ImageInspect(ctx, ref)
		switch {
		case err == nil:
			ok = true
		case cerrdefs.IsNotFound(err):
		default:
			return wrap(err, "inspect image %s", ref)
		}
		return nil
	})
	return ok, err
}

// PullProgress is how far a pull has come, summed over its layers from the engine's JSON
// progress stream.
type PullProgress struct {
	// Layers seen so far, and how many of them are complete (downloaded and extracted, or
	// already present).
	Layers, LayersDone int
	// BytesDone and BytesTotal of the layers' downloads whose size is known.
	BytesDone, BytesTotal int64
}

// String is "2/5 layers, 12.3/40.1 MB".
func (p PullProgress) String() string {
	s := fmt.Sprintf("%d/%d layers", p.LayersDone, p.Layers)
	if p.BytesTotal > 0 {
		s += fmt.Sprintf(", %.1f/%.1f MB", float64(p.BytesDone)/1e6, float64(p.BytesTotal)/1e6)
	}
	return s
}

// PullImage pulls ref, bounded by Timeouts.Pull, calling progress (when not nil) after every
// progress message. ErrImageNotFound when the engine cannot get it; ErrTimeout (and
// ErrUnavailable) when it ran out of time.
func (c *Client) PullImage(ctx context.Context, ref string, progress func(PullProgress)) error {
	return c.call(ctx, "pull image", ref, c.t.Pull, func(ctx context.Context) error {
		resp, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{})
		if err != nil {
			if client.IsErrConnectionFailed(err) || ctx.Err() != nil {
				return wrap(err, "pull image %s", ref)
			}
			return fmt.Errorf("pull image %s: %w: %w", ref, ErrImageNotFound, err)
		}
		defer resp.Close()
		var t pullTracker
		for m, err := range resp.JSONMessages(ctx) {
			if err != nil {
				if ctx.Err() != nil {
					return wrap(err, "pull image %s", ref)
				}
				return fmt.Errorf("pull image %s: %w: %w", ref, ErrImageNotFound, err)
			}
			if m.Error != nil {
				return fmt.Errorf("pull image %s: %w: %s", ref, ErrImageNotFound, m.Error.Message)
			}
			if t.add(m) && progress != nil {
				progress(t.progress())
			}
		}
		return nil
	})
}

// pullTracker folds the engine's per-layer progress messages into one PullProgress.
type pullTracker struct {
	order  []string
	layers map[string]*layerProgress
}

type layerProgress struct {
	done           bool
	current, total int64
}

// add records one message and reports whether it was about a layer.
func (t *pullTracker) add(m jsonstream.Message) bool {
	if m.ID == "" || strings.HasPrefix(m.Status, "Pulling from") {
		return false
	}
	if t.layers == nil {
		t.layers = map[string]*layerProgress{}
	}
	l, ok := t.layers[m.ID]
	if !ok {
		l = &layerProgress{}
		t.layers[m.ID] = l
		t.order = append(t.order, m.ID)
	}
	switch {
	case m.Status == "Pull complete" || m.Status == "Already exists":
		l.done = true
		if l.total > 0 {
			l.current = l.total
		}
	case m.Status == "Download complete":
		if l.total > 0 {
			l.current = l.total
		}
	case strings.HasPrefix(m.Status, "Downloading") && m.Progress != nil:
		l.current, l.total = m.Progress.Current, m.Progress.Total
	}
	return true
}

func (t *pullTracker) progress() PullProgress {
	var p PullProgress
	for _, id := range t.order {
		l := t.layers[id]
		p.Layers++
		if l.done {
			p.LayersDone++
		}
		p.BytesDone += l.current
		p.BytesTotal += l.total
	}
	return p
}

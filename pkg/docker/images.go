package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// ErrBadImageArchive is an image archive the engine refused to load (not a `docker save`
// tar, or cut short).
var ErrBadImageArchive = errors.New("docker: bad image archive")

// Image is one image of the engine (`docker images`).
type Image struct {
	// ID is the image's content address ("sha256:...").
	ID string
	// RepoTags are the references it is tagged with ("constellation-test/echo:1").
	RepoTags []string
	// RepoDigests are the registry digests it is known by ("nginx@sha256:...").
	RepoDigests []string
	// Size is the image's size on disk, shared layers counted in full.
	Size    int64
	Created time.Time
}

// Images lists the engine's tagged and untagged top-level images, sorted by ID.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	err := c.call(ctx, "list images", "", c.t.Call, func(ctx context.Context) error {
		res, err := c.api.ImageList(ctx, client.ImageListOptions{})
		if err != nil {
			return wrap(err, "list images")
		}
		out = make([]Image, 0, len(res.Items))
		for _, s := range res.Items {
			im := Image{ID: s.ID, RepoTags: dropNone(s.RepoTags), RepoDigests: dropNone(s.RepoDigests), Size: s.Size}
			if s.Created > 0 {
				im.Created = time.Unix(s.Created, 0).UTC()
			}
			out = append(out, im)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// dropNone removes the "<none>:<none>" placeholders old engines report for untagged images.
func dropNone(refs []string) []string {
	var out []string
	for _, r := range refs {
		if !strings.HasPrefix(r, "<none>") {
			out = append(out, r)
		}
	}
	return out
}

// ImageID returns the ID of the local image ref, ErrImageNotFound when the engine has none (a
// short, bounded inspect).
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	var id string
	err := c.call(ctx, "inspect image", ref, c.t.Call, func(ctx context.Context) error {
		res, err := c.api.ImageInspect(ctx, ref)
		if err != nil {
			err = wrap(err, "inspect image %s", ref)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: %w", ErrImageNotFound, err)
			}
			return err
		}
		id = res.ID
		return nil
	})
	return id, err
}

// SaveImage writes `docker save REF` (a tar of the image's config, layers and tag) to w and
// returns the bytes written. The stream has no deadline of its own (hundreds of MB take a
// while): only ctx ends it. ErrImageNotFound when the engine has no image ref.
func (c *Client) SaveImage(ctx context.Context, ref string, w io.Writer) (int64, error) {
	if _, err := c.ImageID(ctx, ref); err != nil {
		return 0, err
	}
	start := c.now()
	rc, err := c.api.ImageSave(ctx, []string{ref})
	if err != nil {
		return 0, wrap(err, "save image %s", ref)
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return n, fmt.Errorf("save image %s: after %d bytes: %w", ref, n, err)
	}
	c.log.Debug("image saved", "image", ref, "bytes", n, "duration", c.now().Sub(start).Round(time.Millisecond))
	return n, nil
}

// LoadResult is what `docker load` reports.
type LoadResult struct {
	// Loaded are the references ("constellation-test/echo:1") and, for untagged images, the
	// IDs ("sha256:...") the engine loaded, in its order.
	Loaded []string
}

// LoadImage runs `docker load` of the tar r (as SaveImage writes it). Like SaveImage it has no
// deadline of its own. ErrBadImageArchive when the engine refuses the archive; a reader that
// fails (a peer gone mid-transfer) fails the load with its error, and the engine keeps
// nothing of the cut archive.
func (c *Client) LoadImage(ctx context.Context, r io.Reader) (LoadResult, error) {
	var out LoadResult
	// Read errors of r are kept: the engine only sees a cut request and says little.
	er := &errReader{r: r}
	res, err := c.api.ImageLoad(ctx, er, client.ImageLoadWithQuiet(true))
	if er.err() != nil {
		return out, fmt.Errorf("load image: reading the archive: %w", er.err())
	}
	if err != nil {
		if client.IsErrConnectionFailed(err) || ctx.Err() != nil {
			return out, wrap(err, "load image")
		}
		return out, fmt.Errorf("load image: %w: %w", ErrBadImageArchive, err)
	}
	defer res.Close()
	dec := json.NewDecoder(res)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if er.err() != nil {
				return out, fmt.Errorf("load image: reading the archive: %w", er.err())
			}
			return out, wrap(err, "load image: read the engine's answer")
		}
		if m.Error != nil {
			if er.err() != nil {
				return out, fmt.Errorf("load image: reading the archive: %w", er.err())
			}
			return out, fmt.Errorf("load image: %w: %s", ErrBadImageArchive, m.Error.Message)
		}
		for _, line := range strings.Split(m.Stream, "\n") {
			if ref, ok := strings.CutPrefix(line, "Loaded image: "); ok {
				out.Loaded = append(out.Loaded, strings.TrimSpace(ref))
			} else if id, ok := strings.CutPrefix(line, "Loaded image ID: "); ok {
				out.Loaded = append(out.Loaded, strings.TrimSpace(id))
			}
		}
	}
	if er.err() != nil {
		return out, fmt.Errorf("load image: reading the archive: %w", er.err())
	}
	if len(out.Loaded) == 0 {
		return out, fmt.Errorf("load image: %w: the engine loaded nothing", ErrBadImageArchive)
	}
	return out, nil
}

// errReader remembers the first error other than EOF of the reader it wraps (the HTTP
// transport reads it on its own goroutine).
type errReader struct {
	r io.Reader

	mu    sync.Mutex
	first error // guarded by mu
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		e.mu.Lock()
		if e.first == nil {
			e.first = err
		}
		e.mu.Unlock()
	}
	return n, err
}

func (e *errReader) err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.first
}

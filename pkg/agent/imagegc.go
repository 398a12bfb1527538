package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Garbage collection of copied images (docs/images.md, "Garbage collection"), off unless
// --images.gcAfter is set. Only images this agent loaded from a peer are candidates: it
// tracks them by ID in DataDir/ImageGCFile, so that a restart keeps the list. A tracked image
// is removed once no Service's spec.image has named it (by a tag, a digest or its ID) for
// gcAfter; it is never forced, so an image a container uses (running or stopped, an old
// replica during a rollout) stays, and counts as used.

// ImageGCFile, in the data dir, lists the images this agent loaded from peers.
const ImageGCFile = "images-loaded.json"

// imageGCEngine is what the collector needs of the local engine (*docker.Client).
type imageGCEngine interface {
	Images(ctx context.Context) ([]docker.Image, error)
	ImageID(ctx context.Context, ref string) (string, error)
	RemoveImage(ctx context.Context, ref string) error
}

var _ imageGCEngine = (*docker.Client)(nil)

// trackedImage is one image this agent loaded; LastUsed is when a Service last named it (or
// when it was loaded).
type trackedImage struct {
	ID       string    `json:"id"`
	Ref      string    `json:"ref"`
	LastUsed time.Time `json:"lastUsed"`
}

type imageGC struct {
	engine imageGCEngine
	after  time.Duration
	now    func() time.Time
	// referenced returns the references the Services' specs name.
	referenced func(ctx context.Context) ([]string, error)
	file       string
	log        *slog.Logger

	mu      sync.Mutex
	tracked map[string]trackedImage // guarded by mu; image ID → entry
}

func newImageGC(engine imageGCEngine, after time.Duration, now func() time.Time, referenced func(context.Context) ([]string, error), file string, log *slog.Logger) *imageGC {
	g := &imageGC{engine: engine, after: after, now: now, referenced: referenced, file: file,
		log: log.With("component", "image-gc"), tracked: map[string]trackedImage{}}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		g.log.Warn("cannot read the list of images loaded from peers; starting empty", "file", file, "err", err)
	default:
		var list []trackedImage
		if err := json.Unmarshal(b, &list); err != nil {
			g.log.Warn("ignoring a malformed list of images loaded from peers", "file", file, "err", err)
		}
		for _, t := range list {
			if t.ID != "" {
				g.tracked[t.ID] = t
			}
		}
	}
	return g
}

// track records an image just loaded from a peer under ref.
func (g *imageGC) track(ctx context.Context, ref string) {
	id, err := g.engine.ImageID(ctx, ref)
	if err != nil {
		g.log.Warn("cannot resolve an image loaded from a peer; it will not be collected", "image", ref, "err", err)
		return
	}
	g.mu.Lock()
	g.tracked[id] = trackedImage{ID: id, Ref: ref, LastUsed: g.now()}
	err = g.saveLocked()
	g.mu.Unlock()
	if err != nil {
		g.log.Warn("cannot save the list of images loaded from peers", "err", err)
	}
}

// sweep removes the tracked images no Service has named for gcAfter and returns their IDs.
func (g *imageGC) sweep(ctx context.Context) ([]string, error) {
	refs, err := g.referenced(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the Services' images: %w", err)
	}
	wanted := make(map[uint64]bool, len(refs))
	for _, r := range refs {
		wanted[observed.ImageKey(r)] = true
	}
	ims, err := g.engine.Images(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the engine's images: %w", err)
	}
	byID := make(map[string]docker.Image, len(ims))
	for _, im := range ims {
		byID[im.ID] = im
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var removed []string
	ids := make([]string, 0, len(g.tracked))
	for id := range g.tracked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t := g.tracked[id]
		im, ok := byID[id]
		if !ok {
			delete(g.tracked, id) // removed by someone else
			continue
		}
		if named(wanted, im) {
			t.LastUsed = now
			g.tracked[id] = t
			continue
		}
		if now.Sub(t.LastUsed) < g.after {
			continue
		}
		switch err := g.remove(ctx, im); {
		case err == nil:
			g.log.Info("removed an image no Service used", "image", t.Ref, "id", id, "unusedFor", now.Sub(t.LastUsed).Round(time.Second))
			delete(g.tracked, id)
			removed = append(removed, id)
		case errors.Is(err, docker.ErrImageInUse):
			t.LastUsed = now // a container still uses it
			g.tracked[id] = t
		default:
			g.log.Warn("cannot remove an unused image", "image", t.Ref, "id", id, "err", err)
		}
	}
	if err := g.saveLocked(); err != nil {
		return removed, fmt.Errorf("save %s: %w", g.file, err)
	}
	return removed, nil
}

// remove removes im, which no Service names: by ID, and when the engine refuses that because
// the image has references in several repositories ("must be forced"), each tag and digest
// in turn (none is named by a Service: named looks at them all), then the ID. A container
// using the image makes the last reference's removal ErrImageInUse: the image stays, under
// that one reference.
func (g *imageGC) remove(ctx context.Context, im docker.Image) error {
	err := g.engine.RemoveImage(ctx, im.ID)
	refs := append(append([]string(nil), im.RepoTags...), im.RepoDigests...)
	if err == nil || !errors.Is(err, docker.ErrImageInUse) || len(refs) < 2 {
		return err
	}
	for _, ref := range refs {
		if err := g.engine.RemoveImage(ctx, ref); err != nil {
			return err
		}
		g.log.Debug("untagged an image no Service used", "image", ref, "id", im.ID)
	}
	return g.engine.RemoveImage(ctx, im.ID)
}

// named reports whether a Service names im by a tag, a digest or its ID.
func named(wanted map[uint64]bool, im docker.Image) bool {
	if wanted[observed.ImageKey(im.ID)] {
		return true
	}
	for _, r := range append(append([]string(nil), im.RepoTags...), im.RepoDigests...) {
		if wanted[observed.ImageKey(r)] {
			return true
		}
	}
	return false
}

func (g *imageGC) saveLocked() error {
	list := make([]trackedImage, 0, len(g.tracked))
	for _, t := range g.tracked {
		list = append(list, t)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	tmp := g.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, g.file)
}

// run sweeps every quarter of gcAfter (at most every 10 minutes, at least every second).
func (g *imageGC) run(ctx context.Context) error {
	every := min(max(g.after/4, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := g.sweep(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("image garbage collection", "err", err)
		}
	}
}

// serviceImages lists the images the Services' specs name (a stale read is enough: an image
// named a moment ago is still named for gcAfter).
func (a *Agent) serviceImages(ctx context.Context) ([]string, error) {
	objs, _, err := a.store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		if s, ok := o.(*v1.Service); ok && s.Spec.Image != "" {
			out = append(out, s.Spec.Image)
		}
	}
	return out, nil
}

// imageGCFor starts the collector when --images.gcAfter is set; nil otherwise.
func (a *Agent) imageGCFor(engine imageGCEngine) *imageGC {
	if a.cfg.Images.GCAfter <= 0 {
		return nil
	}
	g := newImageGC(engine, a.cfg.Images.GCAfter, time.Now, a.serviceImages, filepath.Join(a.cfg.DataDir, ImageGCFile), a.log)
	a.addComponent("image-gc", g.run)
	return g
}

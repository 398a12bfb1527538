package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/controllers/node"
	"github.com/constellation-sh/constellation/pkg/docker"
)

// fakeGCEngine holds images by ID; inUse IDs refuse removal as the engine does.
type fakeGCEngine struct {
	mu      sync.Mutex
	ims     map[string]docker.Image // guarded by mu
	inUse   map[string]bool         // guarded by mu
	removed []string                // guarded by mu
	// untagged are the references removed from an image that kept others; guarded by mu.
	untagged []string
}

func (f *fakeGCEngine) Images(context.Context) ([]docker.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []docker.Image
	for _, im := range f.ims {
		out = append(out, im)
	}
	return out, nil
}

func (f *fakeGCEngine) ImageID(_ context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, im := range f.ims {
		if id == ref || slices.Contains(im.RepoTags, ref) {
			return id, nil
		}
	}
	return "", docker.ErrImageNotFound
}

// RemoveImage is the engine's, unforced: by ID, an image a container uses or one with
// references in several repositories is a conflict; by a tag or digest, it only untags while
// the image has other references, and removing the last one removes the image (a conflict if
// a container uses it). A name already gone is not an error.
func (f *fakeGCEngine) RemoveImage(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, im := range f.ims {
		refs := append(slices.Clone(im.RepoTags), im.RepoDigests...)
		if id == ref {
			repos := map[string]bool{}
			for _, r := range refs {
				repos[strings.FieldsFunc(r, func(c rune) bool { return c == ':' || c == '@' })[0]] = true
			}
			if f.inUse[id] || len(repos) > 1 {
				return fmt.Errorf("conflict: unable to delete %s (must be forced): %w", id, docker.ErrImageInUse)
			}
			delete(f.ims, id)
			f.removed = append(f.removed, id)
			return nil
		}
		if !slices.Contains(refs, ref) {
			continue
		}
		if len(refs) == 1 {
			if f.inUse[id] {
				return fmt.Errorf("conflict: unable to remove repository reference %s: %w", ref, docker.ErrImageInUse)
			}
			delete(f.ims, id)
			f.removed = append(f.removed, id)
			return nil
		}
		im.RepoTags = slices.DeleteFunc(slices.Clone(im.RepoTags), func(r string) bool { return r == ref })
		im.RepoDigests = slices.DeleteFunc(slices.Clone(im.RepoDigests), func(r string) bool { return r == ref })
		f.ims[id] = im
		f.untagged = append(f.untagged, ref)
		return nil
	}
	return nil
}

// An unnamed image with tags in several repositories, which the engine refuses to remove by
// ID without force, goes by its tags and digest, then its ID; one a container uses keeps its
// last reference and stays; one whose second tag a Service names stays whole.
func TestImageGCSeveralTags(t *testing.T) {
	ctx := context.Background()
	eng := &fakeGCEngine{ims: map[string]docker.Image{
		"sha256:multi": {ID: "sha256:multi", RepoTags: []string{"a/app:1", "b/app:1", "b/app:latest"}, RepoDigests: []string{"a/app@sha256:aa"}},
		"sha256:busy":  {ID: "sha256:busy", RepoTags: []string{"x/busy:1", "y/busy:1"}},
		"sha256:kept":  {ID: "sha256:kept", RepoTags: []string{"p/kept:1", "q/kept:1"}},
	}, inUse: map[string]bool{"sha256:busy": true}}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	gc := newImageGC(eng, time.Hour, func() time.Time { return now }, func(context.Context) ([]string, error) { return []string{"q/kept:1"}, nil },
		filepath.Join(t.TempDir(), ImageGCFile), slog.New(slog.DiscardHandler))
	for _, ref := range []string{"a/app:1", "x/busy:1", "p/kept:1"} {
		gc.track(ctx, ref)
	}
	now = now.Add(2 * time.Hour)
	removed, err := gc.sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"sha256:multi"}) {
		t.Fatalf("removed %v, want only sha256:multi", removed)
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if _, ok := eng.ims["sha256:multi"]; ok {
		t.Fatalf("sha256:multi is still there: %+v", eng.ims["sha256:multi"])
	}
	if busy, ok := eng.ims["sha256:busy"]; !ok || len(busy.RepoTags) != 1 {
		t.Fatalf("the image a container uses: %+v, %v; want it kept under one tag", busy, ok)
	}
	if kept := eng.ims["sha256:kept"]; len(kept.RepoTags) != 2 {
		t.Fatalf("the image a Service names lost tags: %+v", kept)
	}
	for _, ref := range []string{"a/app:1", "b/app:1", "b/app:latest"} {
		if !slices.Contains(eng.untagged, ref) {
			t.Errorf("%s was not untagged (untagged %v)", ref, eng.untagged)
		}
	}
}

// Only images loaded from peers are collected, once no Service has named them for gcAfter;
// one a Service names, one a container uses and one never loaded from a peer stay; the list
// survives a restart of the collector.
func TestImageGC(t *testing.T) {
	ctx := context.Background()
	eng := &fakeGCEngine{ims: map[string]docker.Image{
		"sha256:old":    {ID: "sha256:old", RepoTags: []string{"old:1"}},
		"sha256:web":    {ID: "sha256:web", RepoTags: []string{"web:1"}},
		"sha256:busy":   {ID: "sha256:busy", RepoTags: []string{"busy:1"}},
		"sha256:pulled": {ID: "sha256:pulled", RepoTags: []string{"pulled:1"}}, // not from a peer
		"sha256:bydig":  {ID: "sha256:bydig", RepoTags: []string{"dig:1"}, RepoDigests: []string{"dig@sha256:0123"}},
	}, inUse: map[string]bool{"sha256:busy": true}}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var mu sync.Mutex
	services := []string{"docker.io/library/web:1", "dig@sha256:0123"}
	referenced := func(context.Context) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(services), nil
	}
	file := filepath.Join(t.TempDir(), ImageGCFile)
	log := slog.New(slog.DiscardHandler)
	gc := newImageGC(eng, time.Hour, clock, referenced, file, log)
	for _, ref := range []string{"old:1", "web:1", "busy:1", "dig:1", "missing:1"} {
		gc.track(ctx, ref)
	}

	now = now.Add(59 * time.Minute)
	if removed, err := gc.sweep(ctx); err != nil || len(removed) != 0 {
		t.Fatalf("sweep before gcAfter = %v, %v; want nothing removed", removed, err)
	}
	now = now.Add(2 * time.Minute)
	// A restart of the collector reads the list back.
	gc = newImageGC(eng, time.Hour, clock, referenced, file, log)
	removed, err := gc.sweep(ctx)
	if err != nil || !slices.Equal(removed, []string{"sha256:old"}) {
		t.Fatalf("sweep after gcAfter = %v, %v; want only sha256:old", removed, err)
	}
	for _, id := range []string{"sha256:web", "sha256:busy", "sha256:pulled", "sha256:bydig"} {
		if _, ok := eng.ims[id]; !ok {
			t.Errorf("%s was removed", id)
		}
	}

	// web:1 stops being named: it goes gcAfter later, not before.
	mu.Lock()
	services = nil
	mu.Unlock()
	now = now.Add(59 * time.Minute)
	if removed, _ := gc.sweep(ctx); len(removed) != 0 {
		t.Fatalf("web:1 and dig:1 were named until the last sweep, removed %v", removed)
	}
	now = now.Add(2 * time.Minute)
	removed, err = gc.sweep(ctx)
	if err != nil || !slices.Equal(removed, []string{"sha256:bydig", "sha256:web"}) {
		t.Fatalf("sweep = %v, %v; want sha256:bydig and sha256:web", removed, err)
	}
	if _, ok := eng.ims["sha256:busy"]; !ok {
		t.Fatal("an image a container uses was removed")
	}
	if _, ok := eng.ims["sha256:pulled"]; !ok {
		t.Fatal("an image not loaded from a peer was removed")
	}
	gc.mu.Lock()
	left := slices.Sorted(func(yield func(string) bool) {
		for id := range gc.tracked {
			if !yield(id) {
				return
			}
		}
	})
	gc.mu.Unlock()
	if !slices.Equal(left, []string{"sha256:busy"}) {
		t.Fatalf("still tracked = %v, want only sha256:busy", left)
	}
}

func TestImageGCListError(t *testing.T) {
	eng := &fakeGCEngine{ims: map[string]docker.Image{"sha256:a": {ID: "sha256:a", RepoTags: []string{"a:1"}}}}
	now := time.Now()
	gc := newImageGC(eng, time.Minute, func() time.Time { return now }, func(context.Context) ([]string, error) {
		return nil, errors.New("store down")
	}, filepath.Join(t.TempDir(), ImageGCFile), slog.New(slog.DiscardHandler))
	gc.track(context.Background(), "a:1")
	now = now.Add(time.Hour)
	if removed, err := gc.sweep(context.Background()); err == nil || len(removed) != 0 {
		t.Fatalf("sweep with the Services unreadable = %v, %v; want an error and nothing removed", removed, err)
	}
}

// The node reconciler's registry pulls are tracked like peer loads when the collector is on: a
// pull that succeeds is reported (and then collected like a peer-loaded image), one that
// fails is not; the wrapper keeps the client's other interfaces.
func TestTrackedPulls(t *testing.T) {
	ctx := context.Background()
	eng := &fakeGCEngine{ims: map[string]docker.Image{}}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	gc := newImageGC(eng, time.Hour, func() time.Time { return now }, func(context.Context) ([]string, error) { return nil, nil },
		filepath.Join(t.TempDir(), ImageGCFile), slog.New(slog.DiscardHandler))
	tp := trackedPulls{
		pull: func(_ context.Context, ref string, _ func(docker.PullProgress)) error {
			if ref == "registry.example/missing:1" {
				return docker.ErrImageNotFound
			}
			eng.mu.Lock()
			defer eng.mu.Unlock()
			eng.ims["sha256:"+ref] = docker.Image{ID: "sha256:" + ref, RepoTags: []string{ref}}
			return nil
		},
		pulled: gc.track,
	}
	if err := tp.PullImage(ctx, "registry.example/app:1", nil); err != nil {
		t.Fatal(err)
	}
	if err := tp.PullImage(ctx, "registry.example/missing:1", nil); !errors.Is(err, docker.ErrImageNotFound) {
		t.Fatalf("a failed pull = %v, want the client's error", err)
	}
	gc.mu.Lock()
	tracked := len(gc.tracked)
	_, ok := gc.tracked["sha256:registry.example/app:1"]
	gc.mu.Unlock()
	if tracked != 1 || !ok {
		t.Fatalf("tracked %d images (the pulled one: %v), want only the pulled one", tracked, ok)
	}
	now = now.Add(2 * time.Hour)
	if removed, err := gc.sweep(ctx); err != nil || !slices.Equal(removed, []string{"sha256:registry.example/app:1"}) {
		t.Fatalf("sweep after gcAfter: %v, %v; want the pulled image removed", removed, err)
	}
	var e docker.Engine = trackedPulls{Client: &docker.Client{}}
	if _, ok := e.(node.Execer); !ok {
		t.Error("the tracked engine hides the client's ExecRun from the node reconciler")
	}
	if _, ok := e.(node.FileCopier); !ok {
		t.Error("the tracked engine hides the client's CopyFiles from the node reconciler")
	}
}

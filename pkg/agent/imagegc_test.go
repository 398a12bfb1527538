package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
)

// fakeGCEngine holds images by ID; inUse IDs refuse removal as the engine does.
type fakeGCEngine struct {
	mu      sync.Mutex
	ims     map[string]docker.Image // guarded by mu
	inUse   map[string]bool         // guarded by mu
	removed []string                // guarded by mu
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

func (f *fakeGCEngine) RemoveImage(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inUse[id] {
		return fmt.Errorf("conflict: %w", docker.ErrImageInUse)
	}
	delete(f.ims, id)
	f.removed = append(f.removed, id)
	return nil
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

package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
)

type fakeImageLister struct {
	mu   sync.Mutex
	ims  []docker.Image // guarded by mu
	err  error          // guarded by mu
	hits int            // guarded by mu
}

func (f *fakeImageLister) Images(context.Context) ([]docker.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits++
	return append([]docker.Image(nil), f.ims...), f.err
}

func (f *fakeImageLister) set(ims []docker.Image, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ims, f.err = ims, err
}

func TestAdvertRefsNewestFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := advertRefs([]docker.Image{
		{ID: "sha256:old", RepoTags: []string{"old:1"}, Created: t0},
		{ID: "sha256:new", RepoTags: []string{"new:1", "new:latest"}, RepoDigests: []string{"new@sha256:d"}, Created: t0.Add(time.Hour)},
		{ID: "sha256:untagged", Created: t0.Add(time.Minute)},
	}, nil)
	want := []string{"new:1", "new:latest", "new@sha256:d", "sha256:new", "sha256:untagged", "old:1", "sha256:old"}
	if !slices.Equal(got, want) {
		t.Fatalf("advertRefs = %q, want %q", got, want)
	}
}

// The images Services name go first, whichever reference names them (a short tag, a digest,
// the ID), so that on a node with hundreds of images they stay within the 256-key bound; the
// rest follow newest first.
func TestAdvertRefsServiceImagesFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ims []docker.Image
	for i := range 300 { // 600 keys, newest first: the old ones fall out of the bound
		ims = append(ims, docker.Image{ID: fmt.Sprintf("sha256:%03d", i), RepoTags: []string{fmt.Sprintf("filler:%d", i)}, Created: t0.Add(time.Duration(i) * time.Minute)})
	}
	ims = append(ims,
		docker.Image{ID: "sha256:app", RepoTags: []string{"docker.io/library/app:latest"}, Created: t0.Add(-time.Hour)},
		docker.Image{ID: "sha256:pinned", RepoTags: []string{"pinned:2"}, RepoDigests: []string{"pinned@sha256:dd"}, Created: t0.Add(-2 * time.Hour)},
		docker.Image{ID: "sha256:byid", Created: t0.Add(-3 * time.Hour)},
	)
	wanted := map[uint64]bool{}
	for _, r := range []string{"app", "pinned@sha256:dd", "sha256:byid", "not-here:1"} {
		wanted[observed.ImageKey(r)] = true
	}
	got := advertRefs(ims, wanted)
	want := []string{"docker.io/library/app:latest", "sha256:app", "pinned:2", "pinned@sha256:dd", "sha256:pinned", "sha256:byid",
		"filler:299", "sha256:299"}
	if !slices.Equal(got[:len(want)], want) {
		t.Fatalf("advertRefs starts %q, want %q", got[:len(want)], want)
	}
	if len(got) != 2*300+6 {
		t.Fatalf("advertRefs has %d refs, want every image's (%d)", len(got), 2*300+6)
	}
	// Without Services, the same images are newest first: the named ones last.
	if got := advertRefs(ims, nil); got[0] != "filler:299" || got[len(got)-1] != "sha256:byid" {
		t.Fatalf("without Services: starts %q, ends %q", got[0], got[len(got)-1])
	}
}

// The advertiser publishes the Services' images first, and advertises newest first when it
// cannot read the Services.
func TestImageAdvertiserServiceImages(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eng := &fakeImageLister{ims: []docker.Image{{ID: "sha256:a", RepoTags: []string{"a:1"}, Created: t0}, {ID: "sha256:b", RepoTags: []string{"b:1"}, Created: t0.Add(time.Hour)}}}
	var refsErr error
	ad := newImageAdvertiser(eng, func([]string) int { return 0 }, func(context.Context) ([]string, error) { return []string{"a:1"}, refsErr }, time.Hour, slog.New(slog.DiscardHandler))
	var got []string
	ad.publish = func(refs []string) int { got = refs; return len(refs) }
	if err := ad.advertise(context.Background()); err != nil || !slices.Equal(got, []string{"a:1", "sha256:a", "b:1", "sha256:b"}) {
		t.Fatalf("advertise = %q, %v; want a (named) first", got, err)
	}
	refsErr = errors.New("store unavailable")
	if err := ad.advertise(context.Background()); err != nil || !slices.Equal(got, []string{"b:1", "sha256:b", "a:1", "sha256:a"}) {
		t.Fatalf("advertise without the Services = %q, %v; want newest first", got, err)
	}
}

// The advertiser publishes at once, again on a kick (no tick within the test: the interval
// is an hour), and keeps the previous advertisement when the engine cannot list.
func TestImageAdvertiserPublishes(t *testing.T) {
	eng := &fakeImageLister{ims: []docker.Image{{ID: "sha256:a", RepoTags: []string{"a:1"}}}}
	published := make(chan []string, 10)
	ad := newImageAdvertiser(eng, func(refs []string) int { published <- refs; return len(refs) }, nil, time.Hour, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ad.run(ctx) }()
	next := func() []string {
		t.Helper()
		select {
		case refs := <-published:
			return refs
		case <-time.After(10 * time.Second):
			t.Fatal("nothing published")
			return nil
		}
	}
	if got := next(); !slices.Equal(got, []string{"a:1", "sha256:a"}) {
		t.Fatalf("first advertisement = %q", got)
	}
	eng.set([]docker.Image{{ID: "sha256:b", RepoTags: []string{"b:1"}}}, nil)
	ad.kick()
	if got := next(); !slices.Equal(got, []string{"b:1", "sha256:b"}) {
		t.Fatalf("after a kick = %q", got)
	}
	eng.set(nil, errors.New("engine down"))
	ad.kick()
	// The failed list is followed by no publication; a later good one is.
	eng2 := []docker.Image{{ID: "sha256:c"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		eng.mu.Lock()
		hits := eng.hits
		eng.mu.Unlock()
		if hits >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the kick did not re-read the engine")
		}
		time.Sleep(5 * time.Millisecond)
	}
	eng.set(eng2, nil)
	ad.kick()
	if got := next(); !slices.Equal(got, []string{"sha256:c"}) {
		t.Fatalf("after the failed list, next advertisement = %q (a failed list must publish nothing)", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
}

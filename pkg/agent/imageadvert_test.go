package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
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
	})
	want := []string{"new:1", "new:latest", "new@sha256:d", "sha256:new", "sha256:untagged", "old:1", "sha256:old"}
	if !slices.Equal(got, want) {
		t.Fatalf("advertRefs = %q, want %q", got, want)
	}
}

// The advertiser publishes at once, again on a kick (no tick within the test: the interval
// is an hour), and keeps the previous advertisement when the engine cannot list.
func TestImageAdvertiserPublishes(t *testing.T) {
	eng := &fakeImageLister{ims: []docker.Image{{ID: "sha256:a", RepoTags: []string{"a:1"}}}}
	published := make(chan []string, 10)
	ad := newImageAdvertiser(eng, func(refs []string) int { published <- refs; return len(refs) }, time.Hour, slog.New(slog.DiscardHandler))
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

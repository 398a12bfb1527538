package ctrl

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// breakingSource fails the first watch after one event, as a store does when a watcher falls
// behind compacted history.
type breakingSource struct {
	*store.Memory
	mu      sync.Mutex
	watches int
}

func (b *breakingSource) Watch(ctx context.Context, kind string, rev int64) (<-chan store.Event, error) {
	b.mu.Lock()
	b.watches++
	n := b.watches
	b.mu.Unlock()
	ch, err := b.Memory.Watch(ctx, kind, rev)
	if err != nil || n > 1 {
		return ch, err
	}
	out := make(chan store.Event)
	go func() {
		defer close(out)
		ev := <-ch
		out <- ev
		out <- store.Event{Type: store.Error, Err: store.ErrTooOld}
	}()
	return out, nil
}

func node(name string) *v1.Node {
	return &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: name}}
}

func TestListWatchListsFollowsAndRelistsAfterAFailedWatch(t *testing.T) {
	mem := store.NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := mem.Create(ctx, node("a")); err != nil {
		t.Fatal(err)
	}
	src := &breakingSource{Memory: mem}
	seen := make(chan string, 16)
	go ListWatch(ctx, src, v1.KindNode, nil, func(ev store.Event) { seen <- string(ev.Type) + " " + ev.Object.GetMetadata().Name })
	next := func() string {
		select {
		case s := <-seen:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
		return ""
	}
	if got := next(); got != "ADDED a" {
		t.Fatalf("first = %q, want the listed object", got)
	}
	if _, err := mem.Create(ctx, node("b")); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "ADDED b" {
		t.Fatalf("second = %q, want the watched creation", got)
	}
	// The watch now fails; the object created meanwhile must arrive through the relist.
	if _, err := mem.Create(ctx, node("c")); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 3 {
		got[next()] = true
	}
	if !got["ADDED c"] || !got["ADDED a"] || !got["ADDED b"] {
		t.Fatalf("after the failed watch: %v, want a full relist including c", got)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.watches < 2 {
		t.Fatalf("watches = %d: no new watch after the failure", src.watches)
	}
}

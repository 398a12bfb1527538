package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
)

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not closed within 5s", what)
	}
}

// TestViewSyncNeedsGossipAndLocalPublish: the provider's Synced closes only once gossip has
// joined (or found no peer) and the node has published, in either order, each signal once.
func TestViewSyncNeedsGossipAndLocalPublish(t *testing.T) {
	for _, order := range []string{"gossip first", "publish first"} {
		t.Run(order, func(t *testing.T) {
			v := newViewSync()
			first, second := v.gossipJoined, v.localPublished
			if order == "publish first" {
				first, second = second, first
			}
			first()
			first() // repeated signals are harmless
			// With one signal, run returns at its context's end without closing synced.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { v.run(ctx); close(done) }()
			cancel()
			<-done
			if closed(v.synced) {
				t.Fatal("synced closed after one of the two signals")
			}
			second()
			second()
			ctx2, cancel2 := context.WithCancel(context.Background())
			defer cancel2()
			go v.run(ctx2)
			waitClosed(t, v.synced, "synced after both signals")
		})
	}
}

type fakeLister struct {
	cs  []docker.Container
	err error
}

func (f fakeLister) List(context.Context, map[string]string) ([]docker.Container, error) {
	return f.cs, f.err
}

func TestCheckNothingLocal(t *testing.T) {
	v := newViewSync()
	v.checkNothingLocal(context.Background(), fakeLister{err: errors.New("docker down")}, "n1")
	if closed(v.published) {
		t.Fatal("a failed Docker list counted as nothing to publish")
	}
	v.checkNothingLocal(context.Background(), fakeLister{cs: []docker.Container{{ID: "c1", Labels: map[string]string{docker.LabelService: "web"}}}}, "n1")
	if closed(v.published) {
		t.Fatal("a node with containers counted as published before the reconciler published")
	}
	v.checkNothingLocal(context.Background(), fakeLister{}, "n1")
	if !closed(v.published) {
		t.Fatal("a node without containers is not counted as published")
	}
	// Job containers are no replicas: a node with only them has nothing to publish either.
	v = newViewSync()
	v.checkNothingLocal(context.Background(), fakeLister{cs: []docker.Container{{ID: "j1", Labels: map[string]string{docker.LabelJob: "backup"}}}}, "n1")
	if !closed(v.published) {
		t.Fatal("a node with only Job containers is not counted as published")
	}
}

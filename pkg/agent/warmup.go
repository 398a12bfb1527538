package agent

import (
	"context"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
)

// viewSync says when this agent's observed view is worth serving to Traefik after a start (B7):
// gossip has exchanged full state with a peer (memberlist's Join does one push/pull before it
// returns) or there is no peer to join, and the local node reconciler has published its
// replicas once (or the node has no container to publish). Before that, every route would be
// rendered with an empty server list. The provider waits for synced, up to its warm-up cap.
type viewSync struct {
	joined, published, synced chan struct{}
	joinOnce, publishOnce     sync.Once
}

func newViewSync() *viewSync {
	return &viewSync{joined: make(chan struct{}), published: make(chan struct{}), synced: make(chan struct{})}
}

func (v *viewSync) gossipJoined()   { v.joinOnce.Do(func() { close(v.joined) }) }
func (v *viewSync) localPublished() { v.publishOnce.Do(func() { close(v.published) }) }

// run closes synced once both signals have come, or returns when ctx ends.
func (v *viewSync) run(ctx context.Context) {
	for _, c := range []chan struct{}{v.joined, v.published} {
		select {
		case <-c:
		case <-ctx.Done():
			return
		}
	}
	close(v.synced)
}

// lister is the Docker call checkNothingLocal needs.
type lister interface {
	List(ctx context.Context, labels map[string]string) ([]docker.Container, error)
}

var _ lister = (*docker.Client)(nil)

// checkNothingLocal counts the local node as published when it has no container of ours: the
// node reconciler publishes only after reconciling a Service, and with none there is nothing
// for it to say. A failed or slow Docker call proves nothing; the warm-up cap covers it.
func (v *viewSync) checkNothingLocal(ctx context.Context, d lister, node string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cs, err := d.List(ctx, map[string]string{docker.LabelNode: node})
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Labels[docker.LabelService] != "" {
			return // a replica: the node reconciler publishes it
		}
	}
	// None, or only Job containers (controllers/job), which are no replicas.
	v.localPublished()
}

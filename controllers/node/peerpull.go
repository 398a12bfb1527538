package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/constellation-sh/constellation/pkg/docker"
)

// PeerFetch makes image ref present on this node's engine by copying it from another node and
// returns that node's name; an error means no peer could give it (the registry is tried next).
// It calls progress (never nil) with the peer it is copying from and the bytes received so
// far. pkg/agent implements it (peerimages.go).
type PeerFetch func(ctx context.Context, ref string, progress func(node string, bytes int64)) (node string, err error)

type pullFunc func(ctx context.Context, ref string, progress func(docker.PullProgress)) error

// imageSource is the peer an image is coming (or came) from, with the bytes received.
type imageSource struct {
	node  string
	bytes int64
}

// imageSources remembers where a pull gets (or got) its image while a peer sends it and once
// it came, so that ImagePulling and the Pulled Event name the peer. One entry per image
// copied from a peer since the agent started; a later pull of the image resets it.
type imageSources struct {
	mu sync.Mutex
	// from by image; guarded by mu.
	from map[string]imageSource
}

func (s *imageSources) set(ref string, src imageSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.from == nil {
		s.from = map[string]imageSource{}
	}
	if src.node == "" {
		delete(s.from, ref)
		return
	}
	s.from[ref] = src
}

func (s *imageSources) get(ref string) imageSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from[ref]
}

// peersFirst is the pull step with peers before the registry: fetch (nil: registry only), and
// on any failure of it pull, as before. The registry's error is the one returned (it decides
// the replica's failure reason); the peers' is kept in its message.
func peersFirst(fetch PeerFetch, pull pullFunc, src *imageSources, log *slog.Logger) pullFunc {
	if fetch == nil {
		return pull
	}
	return func(ctx context.Context, ref string, progress func(docker.PullProgress)) error {
		src.set(ref, imageSource{})
		node, ferr := fetch(ctx, ref, func(node string, n int64) { src.set(ref, imageSource{node: node, bytes: n}) })
		if ferr == nil {
			src.set(ref, imageSource{node: node, bytes: src.get(ref).bytes})
			log.Info("image copied from a peer", "image", ref, "from", node)
			return nil
		}
		if ctx.Err() != nil {
			return ferr
		}
		src.set(ref, imageSource{})
		log.Info("image not available from peers, pulling from its registry", "image", ref, "reason", ferr)
		if err := pull(ctx, ref, progress); err != nil {
			return fmt.Errorf("%w (peers: %v)", err, ferr)
		}
		return nil
	}
}

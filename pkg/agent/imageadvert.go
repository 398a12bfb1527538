package agent

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// The advertisement of this node's images (docs/images.md, "Advertisement"): every
// imageAdvertInterval, and at once after an image came from a peer, the agent lists its
// engine's images and hands their references to gossip (Gossip.SetLocalImages), which keeps
// the first observed.MaxImageKeys keys and spreads them in its push/pull exchanges. The other
// nodes' peer fetches ask the advertisers first, and the scheduler prefers them on a tie.

// imageAdvertInterval is how often the engine's images are re-read; an unchanged list is no
// news to anyone (neither gossip nor the observed set's watchers are woken).
const imageAdvertInterval = 30 * time.Second

// imageLister is what the advertiser needs of the local engine (*docker.Client).
type imageLister interface {
	Images(ctx context.Context) ([]docker.Image, error)
}

var _ imageLister = (*docker.Client)(nil)

type imageAdvertiser struct {
	engine  imageLister
	publish func(refs []string) int
	// referenced, if set, lists the references the Services' specs name: their images go
	// first, within the bound. An error advertises without that preference.
	referenced func(ctx context.Context) ([]string, error)

	interval time.Duration
	kickCh   chan struct{} // buffered 1: a kick while one is pending is the same kick
	log      *slog.Logger
}

func newImageAdvertiser(engine imageLister, publish func([]string) int, referenced func(context.Context) ([]string, error), interval time.Duration, log *slog.Logger) *imageAdvertiser {
	return &imageAdvertiser{engine: engine, publish: publish, referenced: referenced, interval: interval, kickCh: make(chan struct{}, 1),
		log: log.With("component", "image-advertiser")}
}

// kick asks for a re-read of the engine's images soon, without waiting for the tick.
func (ad *imageAdvertiser) kick() {
	select {
	case ad.kickCh <- struct{}{}:
	default:
	}
}

// run advertises at once, then on every tick and kick, until ctx ends. A failed list keeps
// the previous advertisement and is retried on the next tick.
func (ad *imageAdvertiser) run(ctx context.Context) error {
	t := time.NewTicker(ad.interval)
	defer t.Stop()
	for {
		if err := ad.advertise(ctx); err != nil && ctx.Err() == nil {
			ad.log.Warn("cannot list the engine's images to advertise them", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-ad.kickCh:
		}
	}
}

func (ad *imageAdvertiser) advertise(ctx context.Context) error {
	ims, err := ad.engine.Images(ctx)
	if err != nil {
		return err
	}
	var wanted map[uint64]bool
	if ad.referenced != nil {
		refs, err := ad.referenced(ctx)
		if err != nil {
			ad.log.Debug("cannot list the Services' images; advertising newest first only", "err", err)
			refs = nil
		}
		wanted = make(map[uint64]bool, len(refs))
		for _, r := range refs {
			wanted[observed.ImageKey(r)] = true
		}
	}
	n := ad.publish(advertRefs(ims, wanted))
	ad.log.Debug("advertised the engine's images", "images", len(ims), "keys", n)
	return nil
}

// advertRefs lists the references of ims: first the images a Service names (wanted, by
// observed.ImageKey of a tag, a digest or the ID: those the other nodes' replicas will ask
// for), then the others; each group newest first (the bound of the advertisement keeps the
// first: the newest are those a rollout in progress asks for); per image its tags, then its
// digests, then its ID.
func advertRefs(ims []docker.Image, wanted map[uint64]bool) []string {
	ims = append([]docker.Image(nil), ims...)
	sort.SliceStable(ims, func(i, j int) bool {
		if wi, wj := named(wanted, ims[i]), named(wanted, ims[j]); wi != wj {
			return wi
		}
		if !ims[i].Created.Equal(ims[j].Created) {
			return ims[i].Created.After(ims[j].Created)
		}
		return ims[i].ID < ims[j].ID
	})
	var refs []string
	for _, im := range ims {
		refs = append(refs, im.RepoTags...)
		refs = append(refs, im.RepoDigests...)
		if im.ID != "" {
			refs = append(refs, im.ID)
		}
	}
	return refs
}

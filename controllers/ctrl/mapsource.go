package ctrl

import (
	"context"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// MapSource is src with every object it lists or watches passed through fn first: a cache built
// on it holds fn's results (the scheduler keeps digests of Secrets and Configs, never their
// values). fn must not modify its argument.
func MapSource(src Source, fn func(v1.Object) v1.Object) Source { return mapSource{src, fn} }

type mapSource struct {
	src Source
	fn  func(v1.Object) v1.Object
}

func (s mapSource) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	objs, rev, err := s.src.List(ctx, kind, sel, opts...)
	for i, o := range objs {
		objs[i] = s.fn(o)
	}
	return objs, rev, err
}

func (s mapSource) Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error) {
	in, err := s.src.Watch(ctx, kind, fromRev)
	if err != nil {
		return nil, err
	}
	out := make(chan store.Event)
	go func() {
		defer close(out)
		for ev := range in {
			if ev.Object != nil {
				ev.Object = s.fn(ev.Object)
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

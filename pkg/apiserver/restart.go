package apiserver

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// putKeepingRestartedAt is PUT of a Service that says nothing of spec.restartedAt: the stored
// value is kept (`ctl rollout restart` wrote it; applying the original file afterwards must not
// restart every replica again, nor undo the restart). The read and the write are one
// compare-and-swap, retried on conflict, so a restart that lands in between is not lost. A
// caller's own resourceVersion stays its compare-and-swap: its conflict is its answer.
func (s *Server) putKeepingRestartedAt(ctx context.Context, svc *v1.Service) (v1.Object, bool, error) {
	own := svc.Metadata.ResourceVersion != ""
	for attempt := 0; ; attempt++ {
		cur, err := s.cfg.Store.Get(ctx, v1.KindService, svc.Metadata.Name)
		if errors.Is(err, store.ErrNotFound) {
			return s.createOrUpdate(ctx, svc)
		}
		if err != nil {
			return nil, false, err
		}
		live, ok := cur.(*v1.Service)
		if !ok || live.Spec.RestartedAt == nil {
			return s.createOrUpdate(ctx, svc)
		}
		in := svc.DeepCopyObject().(*v1.Service)
		t := *live.Spec.RestartedAt
		in.Spec.RestartedAt = &t
		if !own {
			in.Metadata.ResourceVersion = live.Metadata.ResourceVersion
		}
		out, err := s.cfg.Store.Update(ctx, in)
		switch {
		case err == nil:
			return out, false, nil
		case errors.Is(err, store.ErrNotFound) && !own:
			continue // deleted meanwhile: create it as given
		case errors.Is(err, store.ErrConflict) && !own && attempt < 10:
			continue
		case errors.Is(err, store.ErrConflict) && !own:
			return nil, false, fmt.Errorf("services/%s: %w: the Service kept changing while it was written", svc.Metadata.Name, err)
		}
		return nil, false, err
	}
}

// keepRestartedAt gives obj (a Service PUT without spec.restartedAt) the stored value of live,
// for a dry run to show what the write would store.
func keepRestartedAt(live, obj v1.Object) {
	in, ok1 := obj.(*v1.Service)
	cur, ok2 := live.(*v1.Service)
	if ok1 && ok2 && in.Spec.RestartedAt == nil && cur.Spec.RestartedAt != nil {
		t := *cur.Spec.RestartedAt
		in.Spec.RestartedAt = &t
	}
}

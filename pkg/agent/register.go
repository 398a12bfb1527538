package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// register creates or refreshes this node's Node object: labels from the configuration are
// authoritative; cordon and drain set through ctl are kept. It retries until it succeeds or ctx
// ends, so a node started while the store has no quorum registers when quorum returns.
func (a *Agent) register(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.registerOnce(rctx)
		cancel()
		switch {
		case err == nil:
			a.log.Info("node registered", "node", a.cfg.Node.Name)
			return
		case ctx.Err() != nil:
			return
		case !errors.Is(err, store.ErrConflict) && attempt%5 == 0:
			a.log.Warn("node registration failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

func (a *Agent) registerOnce(ctx context.Context) error {
	obj, err := a.store.Get(ctx, v1.KindNode, a.cfg.Node.Name)
	if errors.Is(err, store.ErrNotFound) {
		n := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}}
		n.Metadata.Name = a.cfg.Node.Name
		n.Spec.Labels = a.cfg.Node.Labels
		announceLevel(n)
		n.Default()
		_, err = a.store.Create(ctx, n)
		if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("register node %s: %w", a.cfg.Node.Name, err)
		}
		if err != nil {
			return store.ErrConflict // raced with ourselves on another path: retry
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", a.cfg.Node.Name, err)
	}
	n := obj.(*v1.Node)
	n.Spec.Labels = a.cfg.Node.Labels
	announceLevel(n)
	if _, err := a.store.Update(ctx, n); err != nil {
		return fmt.Errorf("register node %s: %w", a.cfg.Node.Name, err)
	}
	return nil
}

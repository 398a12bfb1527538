// Keeping the rendered config current: watching the store, coalescing pokes, listing the
// objects and rendering them, keeping the last good config on failure.

package traefik

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// watchStore pokes the render loop on every Service or Secret change. A failed watch is
// re-opened after a pause and followed by a poke: rendering re-lists, so nothing is missed.
func (p *Provider) watchStore(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := p.cfg.Store.Watch(ctx, "", 0)
		if err == nil {
			p.pokeLoop()
			for ev := range ch {
				if ev.Type == store.Error {
					err = ev.Err
					break
				}
				if ev.Object == nil {
					continue
				}
				if k := ev.Object.GetTypeMeta().Kind; k == v1.KindService || k == v1.KindSecret {
					p.pokeLoop()
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch closed")
		}
		p.metrics.watchRestarts.Inc()
		p.log.Warn("store watch failed; re-opening", "err", err, "after", p.cfg.RetryBackoff)
		t := time.NewTimer(p.cfg.RetryBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (p *Provider) pokeLoop() {
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// Sync re-lists the store, renders and publishes the result if it changed. When the store
// cannot be read, the routes of the last good read are rendered with the live endpoints (a dead
// replica still leaves; nothing is torn down because the store is unreachable); when nothing was
// ever read, or rendering fails, the last good configuration stays. Either way the error is
// logged, counted and returned by Ready. Run calls it; tests and the agent may too (it is safe to
// call concurrently with Run).
func (p *Provider) Sync(ctx context.Context) error { return p.refresh(ctx, true) }

// refresh renders, re-listing the store first when relist is set or nothing was listed yet;
// otherwise (only observed state changed) it reuses the last listing, so a health flap costs a
// render, not a store read.
func (p *Provider) refresh(ctx context.Context, relist bool) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	start := time.Now()
	var listErr error
	if relist || !p.listed || p.listFailed {
		svcs, secs, err := p.list(ctx)
		p.listFailed = err != nil
		if err != nil {
			listErr = err
			p.metrics.storeErrors.Inc()
		} else {
			p.services, p.secrets, p.listed = svcs, secs, true
			p.mu.Lock()
			p.listedAt = p.cfg.Now()
			p.mu.Unlock()
		}
	}
	var err error
	if p.listed && p.warm.Load() {
		err = p.render()
	}
	p.metrics.renderSeconds.Observe(time.Since(start).Seconds())
	if err == nil {
		err = listErr
	}

	now := p.cfg.Now()
	p.mu.Lock()
	prev := p.lastErr
	p.lastErr = err
	if err != nil && prev == nil {
		p.lastErrT = now
	}
	listedAt := p.listedAt
	p.mu.Unlock()
	switch {
	case err == nil:
		p.metrics.healthy.Set(1)
		p.metrics.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
		if prev != nil {
			p.log.Info("traefik configuration refresh recovered")
		}
	case prev == nil:
		p.metrics.healthy.Set(0)
		if p.listed {
			p.log.Error("cannot refresh traefik configuration; serving routes from the last good store read with live endpoints",
				"err", err, "storeReadAt", listedAt)
		} else {
			p.log.Error("cannot render traefik configuration; nothing to serve yet", "err", err)
		}
	default:
		p.log.Debug("traefik configuration refresh still failing", "err", err)
	}
	return err
}

// list reads Services and Secrets from the local store replica.
func (p *Provider) list(ctx context.Context) ([]*v1.Service, []*v1.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadTimeout)
	defer cancel()
	svcObjs, _, err := p.cfg.Store.List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	secObjs, _, err := p.cfg.Store.List(ctx, v1.KindSecret, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, nil, fmt.Errorf("list secrets: %w", err)
	}
	svcs := make([]*v1.Service, 0, len(svcObjs))
	for _, o := range svcObjs {
		s, ok := o.(*v1.Service)
		if !ok {
			return nil, nil, fmt.Errorf("list services: got %T", o)
		}
		svcs = append(svcs, s)
	}
	secs := make([]*v1.Secret, 0, len(secObjs))
	for _, o := range secObjs {
		s, ok := o.(*v1.Secret)
		if !ok {
			return nil, nil, fmt.Errorf("list secrets: got %T", o)
		}
		secs = append(secs, s)
	}
	return svcs, secs, nil
}

// render renders the last listing with the current observed state and publishes it if it
// changed. Callers hold syncMu.
func (p *Provider) render() (err error) {
	defer func() {
		// A bug in rendering must not take routing down with it. The stack says where it was.
		if r := recover(); r != nil {
			p.log.Error("traefik rendering panicked; keeping the last good configuration", "panic", r, "stack", string(debug.Stack()))
			p.metrics.renderPanics.Inc()
			err = fmt.Errorf("render: panic: %v", r)
		}
		if err != nil {
			p.metrics.renders.WithLabelValues("error").Inc()
		}
	}()
	st := State{Services: p.services, Secrets: p.secrets, Nodes: p.cfg.View.Nodes(), Replicas: p.cfg.View.Replicas(), EntryPoints: p.cfg.EntryPoints,
		Now: p.cfg.Now(), Health: p.cfg.Health}
	cfg, problems := Render(st)
	body, err := Encode(cfg)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	routes, err := json.Marshal(RouteList{Items: Routes(cfg), Problems: problems})
	if err != nil {
		return fmt.Errorf("encode routes: %w", err)
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`

	now := p.cfg.Now()
	p.mu.Lock()
	prev := p.cur
	changed := prev == nil || prev.etag != etag
	problemsChanged := prev == nil || !slices.Equal(prev.problems, problems)
	if changed {
		p.cur = &snapshot{body: body, etag: etag, routes: routes, problems: problems, at: now}
	} else if string(prev.routes) != string(routes) {
		p.cur = &snapshot{body: prev.body, etag: prev.etag, routes: routes, problems: problems, at: prev.at}
	}
	p.mu.Unlock()

	p.metrics.problems.Set(float64(len(problems)))
	if problemsChanged {
		for _, pr := range problems {
			p.log.Warn("route left out of traefik configuration", "service", pr.Service, "field", pr.Field, "problem", pr.Message)
		}
	}
	if !changed {
		p.metrics.renders.WithLabelValues("unchanged").Inc()
		return nil
	}
	p.metrics.renders.WithLabelValues("changed").Inc()
	p.metrics.configBytes.Set(float64(len(body)))
	var nHTTP, nTCP, nUDP, servers int
	if cfg.HTTP != nil {
		nHTTP = len(cfg.HTTP.Routers)
		for _, s := range cfg.HTTP.Services {
			servers += len(s.LoadBalancer.Servers)
		}
	}
	if cfg.TCP != nil {
		nTCP = len(cfg.TCP.Routers)
		for _, s := range cfg.TCP.Services {
			servers += len(s.LoadBalancer.Servers)
		}
	}
	if cfg.UDP != nil {
		nUDP = len(cfg.UDP.Routers)
		for _, s := range cfg.UDP.Services {
			servers += len(s.LoadBalancer.Servers)
		}
	}
	p.metrics.routers.WithLabelValues("http").Set(float64(nHTTP))
	p.metrics.routers.WithLabelValues("tcp").Set(float64(nTCP))
	p.metrics.routers.WithLabelValues("udp").Set(float64(nUDP))
	p.metrics.servers.Set(float64(servers))
	p.log.Info("traefik configuration changed", "etag", etag, "bytes", len(body),
		"httpRouters", nHTTP, "tcpRouters", nTCP, "udpRouters", nUDP, "servers", servers, "problems", len(problems))
	return nil
}

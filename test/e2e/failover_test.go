package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/test/e2e/harness"
)

// trial is one node-loss measurement (scenario 2 and hack/bench-failover-e2e).
type trial struct {
	Victim string
	// Gone: from the kill until no LB's running Traefik has a server on the victim.
	Gone time.Duration
	// Ready: from the kill until the Service is Ready with every replica off the victim.
	Ready time.Duration
	// Rejoin: from starting the victim again until it is up and the Service runs exactly the
	// desired number of containers cluster-wide (no duplicates).
	Rejoin time.Duration
	Load   harness.LoadStats
}

func (r trial) String() string {
	return fmt.Sprintf("victim %s: endpoints gone %s, replacements Ready %s, rejoined %s, load %s",
		r.Victim, r.Gone.Round(time.Millisecond), r.Ready.Round(time.Millisecond), r.Rejoin.Round(time.Millisecond), r.Load)
}

// pickVictim chooses a node holding replicas of svc, preferring one that is not a load balancer
// (so traffic can keep flowing through every LB). It returns the victim and the LBs that stay.
func pickVictim(ctx context.Context, c *harness.Cluster, svc string) (*harness.Node, []*harness.Node, error) {
	s, err := c.LBs()[0].Service(ctx, svc)
	if err != nil {
		return nil, nil, err
	}
	var candidates []*harness.Node
	for _, n := range c.Nodes {
		if onNode(s, n.Name) {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return nil, nil, fmt.Errorf("services/%s: no replica placed on any node (status %+v)", svc, s.Status)
	}
	victim := candidates[0]
	for _, n := range candidates {
		if !n.LB {
			victim = n
			break
		}
	}
	var lbs []*harness.Node
	for _, lb := range c.LBs() {
		if lb != victim {
			lbs = append(lbs, lb)
		}
	}
	if len(lbs) == 0 {
		return nil, nil, fmt.Errorf("no load balancer left if %s is killed", victim.Name)
	}
	return victim, lbs, nil
}

// failoverTrial kills a node holding replicas of svc under load and measures how the cluster
// moves on, then brings the node back and checks it rejoins without duplicate replicas.
func failoverTrial(t *testing.T, ctx context.Context, c *harness.Cluster, svc, host string, rate int) (trial, error) {
	var r trial
	victim, lbs, err := pickVictim(ctx, c, svc)
	if err != nil {
		return r, err
	}
	r.Victim = victim.Name
	// Every LB's Traefik must route to the victim before, or "leaving" would mean nothing.
	if err := waitUntil(ctx, 30*time.Second, func() error {
		for _, lb := range lbs {
			servers, err := lb.TraefikServers(ctx)
			if err != nil {
				return err
			}
			if len(harness.ServersOn(servers, victim.IP)) == 0 {
				return fmt.Errorf("%s's Traefik has no server on %s (%s): %v", lb.Name, victim.Name, victim.IP, servers)
			}
		}
		return nil
	}); err != nil {
		return r, fmt.Errorf("before the kill: %w", err)
	}
	s0, err := lbs[0].Service(ctx, svc)
	if err != nil {
		return r, err
	}
	want := int(s0.Spec.DesiredReplicas())
	waitLBServers(t, ctx, lbs, svc, want)

	load := harness.StartLoad(lbTargets(lbs, host, "echo"), rate, 2*time.Second)
	time.Sleep(time.Second)
	t0 := time.Now()
	if err := victim.Kill(ctx); err != nil {
		load.Stop()
		return r, err
	}
	gone, ready := make(chan time.Duration, 1), make(chan time.Duration, 1)
	deadline := 2 * time.Minute
	go func() {
		_ = waitUntil(ctx, deadline, func() error {
			for _, lb := range lbs {
				servers, err := lb.TraefikServers(ctx)
				if err != nil {
					return err
				}
				if on := harness.ServersOn(servers, victim.IP); len(on) > 0 {
					return fmt.Errorf("%s still routes to %v", lb.Name, on)
				}
			}
			gone <- time.Since(t0)
			return nil
		})
		close(gone)
	}()
	go func() {
		_, _ = harness.WaitServiceReady(ctx, lbs, svc, deadline, func(s *v1.Service) error {
			if onNode(s, victim.Name) {
				return fmt.Errorf("replicas still on %s: %v", victim.Name, replicaNodes(s))
			}
			return nil
		})
		if s, err := lbs[0].Service(ctx, svc); err == nil && harness.ServiceReady(s) == nil && !onNode(s, victim.Name) {
			ready <- time.Since(t0)
		}
		close(ready)
	}()
	var okGone, okReady bool
	r.Gone, okGone = <-gone
	r.Ready, okReady = <-ready
	time.Sleep(2 * time.Second) // traffic after recovery counts too
	r.Load = load.Stop()
	if !okGone || !okReady {
		s, _ := lbs[0].Service(ctx, svc)
		var st any
		if s != nil {
			st = s.Status
		}
		return r, fmt.Errorf("after killing %s: endpoints gone=%v replacements ready=%v within %s; status %+v; load %s", victim.Name, okGone, okReady, deadline, st, r.Load)
	}

	// The node comes back: its old containers must not run next to the replacements.
	t1 := time.Now()
	if err := victim.Start(ctx); err != nil {
		return r, err
	}
	var stable time.Time
	err = waitUntil(ctx, 2*time.Minute, func() error {
		running, err := runningReplicas(ctx, c.Nodes, svc)
		if err != nil {
			return err
		}
		if k := countAll(running); k != want {
			stable = time.Time{}
			return fmt.Errorf("%d running containers of %s, want %d: %v", k, svc, want, running)
		}
		if stable.IsZero() {
			stable = time.Now()
			r.Rejoin = time.Since(t1)
		}
		if time.Since(stable) < 5*time.Second {
			return fmt.Errorf("settling")
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("after %s came back: %w", victim.Name, err)
	}
	if _, err := harness.WaitServiceReady(ctx, c.Nodes, svc, time.Minute, nil); err != nil {
		return r, err
	}
	return r, nil
}

// waitUntil polls f every 100ms until it returns nil or max passes.
func waitUntil(ctx context.Context, max time.Duration, f func() error) error {
	deadline := time.Now().Add(max)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Run serves until ctx ends, then shuts down gracefully: the API stops accepting, gossip leaves
// the cluster, controllers stop, the store closes. Containers are left running.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = a.joinGossip(ctx, a.joinPeers)
		a.vsync.gossipJoined()
		a.watchGossipKeyring(ctx) // a node cut off during a key rotation heals by itself
	}()
	go a.vsync.run(ctx)
	if a.engine != nil {
		go a.vsync.checkNothingLocal(ctx, a.engine, a.cfg.Node.Name)
	}
	// Registration needs a quorum; the rest of the agent (the Docker reconciler, the Traefik
	// provider on the local replica) must run without one, so it is retried in the background.
	go a.register(ctx)

	srv := &http.Server{Handler: a.api, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api: %w", err)
		}
	}()
	a.log.Info("agent started", "node", a.cfg.Node.Name, "api", a.APIAddress(), "gossip", a.gossip.LocalAddress(),
		"advertise", a.cfg.Node.AdvertiseAddress, "version", Version)

	var wg sync.WaitGroup
	a.mu.Lock()
	comps := append([]component(nil), a.components...)
	a.mu.Unlock()
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("component stopped", "component", c.name, "err", err)
				select {
				case errc <- fmt.Errorf("%s: %w", c.name, err):
				default:
				}
			}
		}()
	}

	var storeFailed <-chan struct{}
	if a.raft != nil {
		storeFailed = a.raft.Failed()
	}
	// Under systemd (Type=notify): READY=1 now, WATCHDOG=1 from this loop (systemd.go).
	sd := a.newSystemd()
	wdTick, stopWD := sd.ready(ctx, a)
	defer stopWD()
	var runErr error
main:
	for {
		select {
		case <-ctx.Done():
			break main
		case runErr = <-errc:
			break main
		case <-storeFailed:
			// Everything acknowledged is on disk; the store only recovers by reopening its data dir.
			// Exit so the supervisor restarts the agent; containers keep running meanwhile.
			runErr = fmt.Errorf("store stopped on a storage failure (%v): restart the agent once the disk is fixed; running containers are not touched", a.raft.Err())
			break main
		case <-wdTick:
			sd.watchdog(ctx, a)
		}
	}
	sd.stopping(a)
	a.log.Info("agent stopping")
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	// The containers keep running: tell the others this is a restart, not a departure, so that
	// nothing is re-placed, unrouted or deleted within the restart grace.
	if err := a.gossip.LeaveForRestart(2 * time.Second); err != nil {
		a.log.Warn("gossip leave", "err", err)
	}
	_ = a.gossip.Shutdown()
	if err := a.store.Close(); err != nil {
		a.log.Warn("store close", "err", err)
	}
	if a.closeEngine != nil {
		_ = a.closeEngine()
	}
	a.log.Info("agent stopped")
	return runErr
}

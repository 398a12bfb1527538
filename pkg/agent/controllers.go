package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	dnsctl "github.com/constellation-sh/constellation/controllers/dns"
	leasectl "github.com/constellation-sh/constellation/controllers/lease"
	meshctl "github.com/constellation-sh/constellation/controllers/mesh"
	"github.com/constellation-sh/constellation/controllers/node"
	rsctl "github.com/constellation-sh/constellation/controllers/replicaset"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/controllers/status"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/election"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
	mongoengine "github.com/constellation-sh/constellation/pkg/replicaset/mongo"
	redisengine "github.com/constellation-sh/constellation/pkg/replicaset/redis"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// setupControllers builds the node-local Docker reconciler (every agent) and the cluster-wide
// controllers that run only while this node holds the "controller" Lease.
func (a *Agent) setupControllers() error {
	loopMetrics := ctrl.NewMetrics(a.reg)
	// What happened to objects, as Events in the store (pkg/events, docs/events.md).
	rec, err := events.New(events.Config{Store: a.store, Node: a.cfg.Node.Name, Logger: a.log, Registerer: a.reg})
	if err != nil {
		return err
	}
	a.addComponent("events", func(ctx context.Context) error { rec.Run(ctx); return nil })

	if a.engine != nil { // engine.go
		var engine docker.Engine = a.engine
		var peerFetch node.PeerFetch // nil: the registry only
		if a.docker != nil {
			engine, peerFetch = a.reconcilerImages(a.docker) // peers first, advertisement, collector (peerimages.go)
		}
		nr, err := node.New(node.Config{
			Node:        a.cfg.Node.Name,
			Advertise:   a.cfg.Node.AdvertiseAddress,
			MeshDNS:     meshDNSAddress(a.cfg),
			MeshDomain:  MeshDomain,
			Store:       a.store,
			Docker:      engine,
			HostAccess:  a.hostAccessPolicy(), // Node and Resolve filled in by the reconciler
			Publish:     func(rs []observed.Replica) { a.gossip.SetLocalReplicas(rs); a.vsync.localPublished() },
			Restored:    a.gossip.Restored(),
			Logger:      a.log,
			Registerer:  a.reg,
			LoopMetrics: loopMetrics,
			Events:      rec,
			PeerFetch:   peerFetch,
		})
		if err != nil {
			return err
		}
		a.addComponent("node-reconciler", func(ctx context.Context) error { nr.Run(ctx); return nil })
	} else {
		a.log.Warn("Docker disabled: this node runs the control plane only and takes no replicas")
		a.vsync.localPublished() // no replica will ever be local
	}

	el, err := election.New(election.Config{
		Store: a.store, Name: v1.LeaseController, Identity: a.cfg.Node.Name, Logger: a.log,
	})
	if err != nil {
		return err
	}
	a.controllerLease = el

	sched, err := scheduler.New(scheduler.Config{
		Store: a.store, View: a.view, IsLeader: el.IsLeader, Health: a.health(),
		Logger: a.log, Registerer: a.reg, LoopMetrics: loopMetrics,
		SecretDigestKey: a.derivedKey("constellation secret digest v1"),
		Events:          rec,
	})
	if err != nil {
		return err
	}
	st, err := status.New(status.Config{
		Store: a.store, View: a.view, SpecHash: spechash.Current,
		RaftRole: a.raftRole, IsLeader: el.IsLeader,
		// Raft role changes (a learner promoted, a leader elected) arrive by no watch: a short
		// resync picks them up. It writes only what changed.
		Resync: 5 * time.Second,
		Logger: a.log, Registerer: a.reg, LoopMetrics: loopMetrics,
	})
	if err != nil {
		return err
	}
	// Virtual IPs: one writer cluster-wide, so two allocations never race (controllers/mesh).
	meshCIDR, err := config.ParseMeshCIDR(a.cfg.Mesh.CIDR)
	if err != nil {
		return fmt.Errorf("--mesh.cidr: %w", err)
	}
	vips, err := meshctl.New(meshctl.Config{
		Store: a.store, CIDR: meshCIDR, IsLeader: el.IsLeader,
		Logger: a.log, Registerer: a.reg, LoopMetrics: loopMetrics,
	})
	if err != nil {
		return err
	}
	// Replica sets: one driver of each database topology cluster-wide (controllers/replicaset).
	sets, err := rsctl.New(rsctl.Config{
		Store: a.store, IsLeader: el.IsLeader,
		Engines: map[v1.Engine]rsctl.EngineFactory{v1.EngineRedis: redisengine.NewEngine, v1.EngineMongo: mongoengine.NewEngine},
		Logger:  a.log, Registerer: a.reg, LoopMetrics: loopMetrics,
	})
	if err != nil {
		return err
	}
	sweeper, err := events.NewSweeper(events.SweeperConfig{Store: a.store, IsLeader: el.IsLeader, Logger: a.log, Registerer: a.reg})
	if err != nil {
		return err
	}
	leaderRuns := []func(ctx context.Context){sched.Run, st.Run, vips.Run, sets.Run, sweeper.Run}
	jobs, err := a.setupJobs(el.IsLeader, loopMetrics)
	if err != nil {
		return err
	}
	leaderRuns = append(leaderRuns, jobs)

	if path := a.cfg.DNS.Cloudflare.TokenFile; path != "" {
		tok, err := cloudflare.ReadTokenFile(path)
		if err != nil {
			return fmt.Errorf("--dns.cloudflare.tokenFile: %w", err)
		}
		cf, err := cloudflare.New(tok, cloudflare.Config{APIURL: a.cfg.DNS.Cloudflare.APIURL}, cloudflare.WithLogger(a.log))
		if err != nil {
			return fmt.Errorf("--dns.cloudflare.apiURL: %w", err)
		}
		a.reg.MustRegister(cf.Collectors()...)
		dc, err := dnsctl.New(dnsctl.Config{Store: a.store, View: a.view, Provider: cf, IsLeader: el.IsLeader, Logger: a.log,
			NodeRecordsZone: a.cfg.DNS.NodeRecords.Zone, Health: a.health(), Events: rec})
		if err != nil {
			return fmt.Errorf("dns controller: %w", err)
		}
		a.reg.MustRegister(dc.Collectors()...)
		leaderRuns = append(leaderRuns, func(ctx context.Context) { dc.Run(ctx, ctrl.Options{Logger: a.log, Metrics: loopMetrics}) })
	} else if a.cfg.DNS.NodeRecords.Zone != "" {
		return errors.New("--dns.nodeRecords.zone: needs --dns.cloudflare.tokenFile")
	}

	a.addComponent("controller-lease", func(ctx context.Context) error {
		el.Run(ctx, leasectl.Observe(ctx, rec, v1.LeaseController, a.cfg.Node.Name, func(ctx context.Context) {
			var wg sync.WaitGroup
			for _, run := range leaderRuns {
				wg.Add(1)
				go func() { defer wg.Done(); run(ctx) }()
			}
			wg.Wait()
		}))
		return nil
	})

	// Nodes labelled role=lb campaign for the "lb" Lease that DNS records can follow.
	camp, err := leasectl.New(leasectl.Config{Store: a.store, Node: a.cfg.Node.Name, Logger: a.log, Events: rec,
		NewElector: func() (leasectl.Elector, error) {
			c := election.DefaultConfig(v1.LeaseLB, a.cfg.Node.Name)
			c.Store, c.Logger = a.store, a.log
			return election.New(c)
		}})
	if err != nil {
		return err
	}
	a.addComponent("lb-campaign", func(ctx context.Context) error {
		camp.Run(ctx, ctrl.Options{Logger: a.log, Metrics: loopMetrics})
		return nil
	})
	return nil
}

// health is the node-health policy every consumer of node verdicts uses.
func (a *Agent) health() nodehealth.Policy {
	return nodehealth.Policy{RestartGrace: a.cfg.Node.RestartGrace}
}

// undo is POST /apis/v1/services/{name}/undo[?toRevision=N].
func (a *Agent) undo(ctx context.Context, name string, rev int64) (v1.Object, error) {
	if err := scheduler.RolloutUndoTo(ctx, a.store, name, rev); err != nil {
		if errors.Is(err, scheduler.ErrNoPreviousRevision) {
			return nil, fmt.Errorf("services/%s: %w: no previous revision to return to", name, store.ErrConflict)
		}
		if errors.Is(err, scheduler.ErrRevisionNotFound) {
			return nil, fmt.Errorf("services/%s: %w: %s", name, store.ErrNotFound, strings.TrimPrefix(err.Error(), "rollout undo services/"+name+": scheduler: "))
		}
		return nil, err
	}
	return a.store.Get(ctx, v1.KindService, name)
}

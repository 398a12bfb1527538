package scheduler

import (
	"context"
	"reflect"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
)

// Run schedules until ctx ends. Call it with the leader context of the controller Lease; it may
// be called again after a later election.
//
// While it runs, Reconcile reads Nodes and the other Services' load from informer caches kept
// by the store's watch (see ctrl.Cache), and observed state from an observed.Index, so a
// reconcile costs O(nodes + its own replicas) whatever the number of Services. Wake-ups:
// a Service's own change; a Node change that can move placement (spec, labels, conditions;
// not the lastSeen heartbeat) enqueues every Service; a view change enqueues the Services whose
// observed replicas changed, or every Service when a node's observed state changed; a resync
// every Config.Resync. No timer polls an incomplete plan: see Reconcile.
func (s *Scheduler) Run(ctx context.Context) {
	loop := ctrl.New[string]("scheduler", s, ctrl.Options{Logger: s.cfg.Logger, Metrics: s.cfg.LoopMetrics})
	var svcs *ctrl.Cache[*v1.Service]
	all := func() {
		for _, name := range svcs.Names() {
			loop.Enqueue(name)
		}
	}
	// Services sharing a namespace follow their owner (placement and readiness).
	dependents := func(owner string) {
		for _, name := range svcs.Indexed(indexNetworkOwner, owner) {
			loop.Enqueue(name)
		}
	}
	svcs = ctrl.NewCache(s.cfg.Store, v1.KindService, ctrl.CacheConfig[*v1.Service]{
		Logger: s.log,
		Indexes: map[string]ctrl.IndexFunc[*v1.Service]{indexAssignedNode: assignedNodes, indexRollingSecret: rollingSecrets, indexNetworkOwner: networkOwners, indexFileConfig: fileConfigs,
			indexHostPort: hostPortKeys, indexDependsOn: dependsOnNames},
		Handler: ctrl.Handler[*v1.Service]{
			OnAdd: func(o *v1.Service) { loop.Enqueue(o.Metadata.Name) },
			OnUpdate: func(old, o *v1.Service) {
				if old.Metadata.ResourceVersion != o.Metadata.ResourceVersion {
					loop.Enqueue(o.Metadata.Name)
					dependents(o.Metadata.Name)
					for _, n := range stackWakeups(svcs.Indexed, old, o) {
						loop.Enqueue(n)
					}
				}
			},
			OnDelete: func(o *v1.Service) {
				loop.Enqueue(o.Metadata.Name)
				dependents(o.Metadata.Name)
				for _, n := range stackWakeups(svcs.Indexed, nil, o) {
					loop.Enqueue(n)
				}
			},
		},
	})
	nodes := ctrl.NewCache(s.cfg.Store, v1.KindNode, ctrl.CacheConfig[*v1.Node]{
		Logger: s.log,
		Handler: ctrl.Handler[*v1.Node]{
			OnAdd: func(*v1.Node) { all() },
			OnUpdate: func(old, n *v1.Node) {
				if placementChanged(old, n) {
					all()
				}
			},
			OnDelete: func(*v1.Node) { all() },
		},
	})
	// A Secret change is a new revision of the Services that roll with it (revisionHash).
	referrers := func(sec *v1.Secret) {
		for _, name := range svcs.Indexed(indexRollingSecret, sec.Metadata.Name) {
			loop.Enqueue(name)
		}
	}
	secrets := ctrl.NewCache(secretVersions(s.cfg.Store, s.cfg.secretDigestKey()), v1.KindSecret, ctrl.CacheConfig[*v1.Secret]{
		Logger: s.log,
		Handler: ctrl.Handler[*v1.Secret]{
			OnAdd: referrers,
			OnUpdate: func(old, sec *v1.Secret) {
				if old.Metadata.ResourceVersion != sec.Metadata.ResourceVersion {
					referrers(sec)
				}
			},
			OnDelete: referrers,
		},
	})
	// A Config change is a new revision of the Services whose spec.files read it.
	configReferrers := func(c *v1.Config) {
		for _, name := range svcs.Indexed(indexFileConfig, c.Metadata.Name) {
			loop.Enqueue(name)
		}
	}
	configs := ctrl.NewCache(configDigests(s.cfg.Store), v1.KindConfig, ctrl.CacheConfig[*v1.Config]{
		Logger: s.log,
		Handler: ctrl.Handler[*v1.Config]{
			OnAdd: configReferrers,
			OnUpdate: func(old, c *v1.Config) {
				if old.Metadata.ResourceVersion != c.Metadata.ResourceVersion {
					configReferrers(c)
				}
			},
			OnDelete: configReferrers,
		},
	})
	go svcs.Run(ctx)
	go nodes.Run(ctx)
	go secrets.Run(ctx)
	go configs.Run(ctx)
	if !ctrl.WaitForSync(ctx, svcs, nodes, secrets, configs) {
		return
	}
	s.setReader(cacheReader{services: svcs, nodes: nodes, secrets: secrets, configs: configs})
	defer func() { s.setReader(nil); s.setSnapshot(nil) }()

	if s.index != nil {
		var last *observed.Snapshot
		go observed.OnChange(ctx, nil, s.cfg.View, viewCoalesce, func() {
			snap := s.index.Snapshot()
			changed, nodesChanged := snap.Diff(last)
			last = snap
			// Reconciles read this snapshot until the next wake-up: one copy of the view per
			// (coalesced) change, not one per reconcile while the view keeps changing. A
			// reconcile that reads it just before a change is enqueued again by that change.
			s.setSnapshot(snap)
			if len(nodesChanged) > 0 {
				// Liveness or labels of a node: any Service may move.
				all()
				return
			}
			for _, name := range changed {
				loop.Enqueue(name)
				dependents(name)
			}
		})
	}
	go func() {
		t := time.NewTicker(s.cfg.Resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				all()
			}
		}
	}()
	loop.Run(ctx)
}

// viewCoalesce is how long view changes are folded into one wake-up (observed.OnChange).
const viewCoalesce = 50 * time.Millisecond

// indexAssignedNode indexes Services by the node of each assignment, counted: the load per node.
const indexAssignedNode = "assignedNode"

// indexRollingSecret indexes Services by the Secrets whose changes roll them.
const indexRollingSecret = "rollingSecret"

func rollingSecrets(svc *v1.Service) []string {
	names, _ := spechash.RollingSecrets(&svc.Spec)
	return names
}

func assignedNodes(svc *v1.Service) []string {
	out := make([]string, 0, len(svc.Status.Assignments))
	for _, a := range svc.Status.Assignments {
		out = append(out, a.Node)
	}
	return out
}

// placementChanged reports whether a Node update can change where replicas go. The status
// controller rewrites lastSeen about once a minute per node; that alone moves nothing, and
// waking every Service for it would cost O(Services) per node per minute.
func placementChanged(old, n *v1.Node) bool {
	strip := func(n *v1.Node) *v1.Node {
		c := *n
		c.Metadata.ResourceVersion = ""
		c.Status.LastSeen = nil
		return &c
	}
	return !reflect.DeepEqual(strip(old), strip(n))
}

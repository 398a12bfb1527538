// The reconciler's dependencies (Docker, Store) and its Config with defaults and validation.

package node

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/hostaccess"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Docker is the part of the engine the node reconciler uses; *docker.Client implements it.
// HasImage is a short local check; PullImage may take minutes and runs off the workers
// (puller.go).
type Docker = docker.Engine

var _ Docker = (*docker.Client)(nil)

// Store is the part of store.Store the node reconciler uses.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// Config configures a Reconciler.
type Config struct {
	// Node is this node's name. Required.
	Node string
	// Advertise is the address other nodes reach this node's published ports at, reported in
	// observed replicas' Ports. Default 127.0.0.1.
	Advertise string
	// PublishIP is the host address ports are published on. Default 0.0.0.0.
	PublishIP string
	// NamePrefix goes before container names (tests use a per-run prefix). Default "".
	NamePrefix string
	// MeshDNS and MeshDomain make new containers resolve through the mesh's name server
	// (docker.BuildOptions). Default "": Docker's resolvers.
	MeshDNS, MeshDomain string
	// Store holds Services and Secrets. Required.
	Store Store
	// Docker is the engine. Required.
	Docker Docker
	// Publish receives all of this node's replicas after every change (point it at
	// observed.Set.SetNodeReplicas or gossip). Required.
	Publish func([]observed.Replica)
	// Secret resolves env secretRefs. Default: read the Secret from Store.
	Secret func(ctx context.Context, name, key string) (string, error)
	// HostAccess is this agent's host-access policy (--security.*), checked again before every
	// container is created: agents may be configured differently from the one that admitted
	// the Service, and only the node sees its own symlinks. A replica refused here is not
	// created; its status says why (reason HostAccessDenied, the field and the flag). Default:
	// the zero Policy (the opt-in is needed, nothing sensitive allowed), with Node set to this
	// node and Resolve to filepath.EvalSymlinks.
	HostAccess hostaccess.Policy
	// Clock is the reconciler's clock: Now, the loop's delays, the resync and reconnect timers,
	// and the timers of the health probes and the egress checks. Default clock.RealClock{}.
	Clock clock.WithTicker
	// Resync re-reconciles every service this often. Default 30s.
	Resync time.Duration
	// DrainDelay: a running replica that no longer belongs is published as terminating this long
	// before it is stopped, so that load balancers stop sending to it. It should exceed the time
	// the view takes to reach the load balancer: gossip propagation + Traefik's pollInterval
	// (5s by default). Default 5s; negative disables.
	DrainDelay time.Duration
	// StopTimeout before SIGKILL. Default 10s.
	StopTimeout time.Duration
	// BackoffBase and BackoffMax bound restart backoff. Default 1s and 60s.
	BackoffBase, BackoffMax time.Duration
	// MinReady: a replica without a health check counts as ready only after running this long,
	// so that a container that exits at once never replaces a good one in an update.
	// Default 1s.
	MinReady time.Duration
	// CrashLoopThreshold failures in a row make a replica CrashLoop. Default 3.
	CrashLoopThreshold int
	// Workers reconcile services in parallel. Default 2.
	Workers int
	// ReconcileTimeout bounds one pass over one Service, whatever the engine does: a pass that
	// runs out of it fails (and is retried with backoff) and frees its worker. It must exceed
	// the longest Docker call of a pass (a create, pkg/docker: 2m). Default 3m.
	ReconcileTimeout time.Duration
	// CallTimeout bounds the reconciler's Docker calls outside a pass: the container list of
	// the resync and of the event stream's reconnect. Default 30s.
	CallTimeout time.Duration
	// PullTimeout bounds one image pull, which runs in the background (one per image at a
	// time); the replicas waiting for it are reported ImagePulling with its progress. Default
	// 10m.
	PullTimeout time.Duration
	// PeerFetch, when set, is tried before the registry for an image missing here: another
	// node's copy (peerpull.go), within the same PullTimeout. Default nil: registry only.
	PeerFetch PeerFetch
	// SlowReconcile: a pass taking at least this long is logged at Warn with the service and
	// its duration. Default 5s.
	SlowReconcile time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// LoopMetrics are the shared reconcile-loop metrics. Nil: none.
	LoopMetrics *ctrl.Metrics
	// Events receives the replicas' Events: Pulling, Pulled, FailedPull, Started, Exited,
	// Restarted, Unhealthy, FailedCreate (events.go). Nil: none.
	Events *events.Recorder
	// Restored are the replicas the previous run of this agent published before it stopped
	// for a restart (gossip.Restored). The reconciler starts from them: publishing one Service
	// keeps the others' replicas until each has been reconciled, and an adopted container whose
	// agent-side probe had passed starts healthy, not "starting". Default none.
	Restored []observed.Replica
}

func (c *Config) validate() error {
	switch {
	case c.Node == "":
		return errors.New("node reconciler: config: Node is required")
	case c.Store == nil:
		return errors.New("node reconciler: config: Store is required")
	case c.Docker == nil:
		return errors.New("node reconciler: config: Docker is required")
	case c.Publish == nil:
		return errors.New("node reconciler: config: Publish is required")
	}
	if c.Advertise == "" {
		c.Advertise = "127.0.0.1"
	}
	if c.PublishIP == "" {
		c.PublishIP = "0.0.0.0"
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Resync <= 0 {
		c.Resync = 30 * time.Second
	}
	switch {
	case c.DrainDelay == 0:
		c.DrainDelay = 5 * time.Second
	case c.DrainDelay < 0:
		c.DrainDelay = 0
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 60 * time.Second
	}
	if c.MinReady <= 0 {
		c.MinReady = time.Second
	}
	if c.CrashLoopThreshold <= 0 {
		c.CrashLoopThreshold = 3
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.ReconcileTimeout <= 0 {
		c.ReconcileTimeout = 3 * time.Minute
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.PullTimeout <= 0 {
		c.PullTimeout = 10 * time.Minute
	}
	if c.SlowReconcile <= 0 {
		c.SlowReconcile = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HostAccess.Node == "" {
		c.HostAccess.Node = c.Node
	}
	if c.HostAccess.Resolve == nil {
		c.HostAccess.Resolve = filepath.EvalSymlinks
	}
	if c.Secret == nil {
		st := c.Store
		c.Secret = func(ctx context.Context, name, key string) (string, error) {
			// From the local replica, like the Service itself (store.SecretValue).
			v, ok, err := store.SecretValue(ctx, st, name, key)
			if err == nil && !ok {
				err = docker.ErrSecretNotFound
			}
			return v, err
		}
	}
	return nil
}

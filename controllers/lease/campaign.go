package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Elector campaigns for one Lease (pkg/election.Elector satisfies it).
type Elector interface {
	// Run campaigns until ctx ends, then releases the lease; lead runs while this candidate
	// leads, under a context cancelled before the lease can expire elsewhere.
	Run(ctx context.Context, lead func(ctx context.Context))
	IsLeader() bool
}

// NewElector returns a fresh elector for one campaign (an elector runs once).
type NewElector func() (Elector, error)

// Store is what the campaign reads.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// Config configures a role campaign.
type Config struct {
	// Store holds the local Node (its labels say whether to campaign). Required.
	Store Store
	// NewElector returns a fresh elector for each campaign. Required.
	NewElector NewElector
	// Node is the local node's name. Required.
	Node string
	// RoleLabel and Role: the node campaigns while its labels carry RoleLabel=Role.
	// Default "role" and "lb".
	RoleLabel, Role string
	// Lease names the Lease campaigned for. Default "lb" (v1.LeaseLB).
	Lease string
	// Lead, when set, runs while this node holds the lease (for example, to start serving).
	Lead func(ctx context.Context)
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Events receives the lease's LeaseAcquired, LeaseLost and LeaseReleased Events
	// (events.go). Nil: none.
	Events *events.Recorder
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("lease campaign: config: Store is required")
	}
	if c.NewElector == nil {
		return errors.New("lease campaign: config: NewElector is required")
	}
	if c.Node == "" {
		return errors.New("lease campaign: node is required")
	}
	if c.RoleLabel == "" {
		c.RoleLabel = "role"
	}
	if c.Role == "" {
		c.Role = "lb"
	}
	if c.Lease == "" {
		c.Lease = v1.LeaseLB
	}
	if !v1.IsDNSLabel(c.Lease) {
		return fmt.Errorf("lease campaign: lease %q is not a DNS label", c.Lease)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Campaign campaigns for a role's Lease while the local node carries the role.
type Campaign struct {
	st     Store
	cfg    Config
	newEl  NewElector
	log    *slog.Logger
	stopCh chan struct{}

	mu sync.Mutex
	// guarded by mu:
	el     Elector
	cancel context.CancelFunc
	done   chan struct{}
}

var _ reconcile.TypedReconciler[string] = (*Campaign)(nil)

// New returns a campaign; Run starts it.
func New(cfg Config) (*Campaign, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Campaign{st: cfg.Store, cfg: cfg, newEl: cfg.NewElector, log: cfg.Logger.With("campaign", cfg.Lease, "node", cfg.Node)}, nil
}

// IsLeader reports whether this node holds the role's lease now.
func (c *Campaign) IsLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.el != nil && c.el.IsLeader()
}

// Campaigning reports whether an election is running on this node.
func (c *Campaign) Campaigning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.el != nil
}

// Reconcile implements reconcile.TypedReconciler: it reads the local Node and starts or stops
// the campaign to match its labels. A node not (yet) registered does not campaign.
func (c *Campaign) Reconcile(ctx context.Context, node string) (reconcile.Result, error) {
	want := false
	obj, err := c.st.Get(ctx, v1.KindNode, node, store.Stale())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		// The store is unreachable: keep doing what we do. The elector fences itself.
		return reconcile.Result{}, fmt.Errorf("get nodes/%s: %w", node, err)
	default:
		n := obj.(*v1.Node)
		want = n.EffectiveLabels()[c.cfg.RoleLabel] == c.cfg.Role && n.Metadata.DeletionTimestamp == nil
	}
	if want {
		return reconcile.Result{}, c.start(ctx)
	}
	c.stop()
	return reconcile.Result{}, nil
}

func (c *Campaign) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.el != nil {
		return nil
	}
	el, err := c.newEl()
	if err != nil {
		return fmt.Errorf("new elector for lease %s: %w", c.cfg.Lease, err)
	}
	// The campaign outlives this reconcile: it runs under Run's context (stopCh), not ctx.
	cctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-c.stopCh:
			cancel()
		case <-cctx.Done():
		}
	}()
	done := make(chan struct{})
	c.el, c.cancel, c.done = el, cancel, done
	c.log.Info("node carries the role: campaigning", "label", c.cfg.RoleLabel+"="+c.cfg.Role)
	go func() {
		defer close(done)
		el.Run(cctx, Observe(cctx, c.cfg.Events, c.cfg.Lease, c.cfg.Node, c.cfg.Lead))
	}()
	return nil
}

// stop ends the campaign (the elector releases the lease) and waits for it.
func (c *Campaign) stop() {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	running := c.el != nil
	c.el, c.cancel, c.done = nil, nil, nil
	c.mu.Unlock()
	if !running {
		return
	}
	c.log.Info("node no longer carries the role: stopping the campaign")
	cancel()
	<-done
}

// Run follows the local Node object until ctx ends, then stops campaigning (releasing the
// lease).
func (c *Campaign) Run(ctx context.Context, opts ctrl.Options) {
	c.mu.Lock()
	c.stopCh = make(chan struct{})
	c.mu.Unlock()
	if opts.Logger == nil {
		opts.Logger = c.log
	}
	loop := ctrl.New[string]("lease-"+c.cfg.Lease, c, opts)
	loop.Enqueue(c.cfg.Node)
	go ctrl.ListWatch(ctx, c.st, v1.KindNode, c.log, func(ev store.Event) {
		if ev.Object.GetMetadata().Name == c.cfg.Node {
			loop.Enqueue(c.cfg.Node)
		}
	})
	loop.Run(ctx)
	close(c.stopCh)
	c.stop()
}

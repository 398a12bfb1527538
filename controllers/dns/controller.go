package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Finalizer is put on every DNSRecord so that deleting it removes its records first.
const Finalizer = "constellation/dns"

// Key kinds.
const (
	// KindDNSRecord: converge one DNSRecord (Key.Name).
	KindDNSRecord = "DNSRecord"
	// KindNodeRecords: converge the per-node records.
	KindNodeRecords = "NodeRecords"
	// KindTargets: recompute wanted records after nodes or leases changed (no API calls) and
	// enqueue those that changed.
	KindTargets = "Targets"
	// KindResync: every Resync, enqueue one KindZone key per zone in use (no API calls).
	KindResync = "Resync"
	// KindZone: list one zone (Key.Name) once and converge every record in it: the drift
	// correction, costing zones × pages calls whatever the number of records.
	KindZone = "Zone"
)

// Key is what the queue holds.
type Key struct {
	Kind string
	Name string
}

func (k Key) String() string {
	if k.Name == "" {
		return k.Kind
	}
	return k.Kind + "/" + k.Name
}

var (
	nodeRecordsKey = Key{Kind: KindNodeRecords}
	targetsKey     = Key{Kind: KindTargets}
	resyncKey      = Key{Kind: KindResync}
)

// Provider is what the controller needs of Cloudflare.
type Provider interface {
	ZoneID(ctx context.Context, zone string) (string, error)
	ListRecords(ctx context.Context, zoneID string, f cloudflare.Filter) ([]cloudflare.Record, error)
	CreateRecord(ctx context.Context, zoneID string, r cloudflare.Record) (cloudflare.Record, error)
	UpdateRecord(ctx context.Context, zoneID string, r cloudflare.Record) (cloudflare.Record, error)
	DeleteRecord(ctx context.Context, zoneID, id string) error
}

var _ Provider = (*cloudflare.Client)(nil)

// Store is what the controller needs of the store.
type Store interface {
	Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error)
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Update(ctx context.Context, obj v1.Object) (v1.Object, error)
	UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Store = store.Store(nil)

// ErrNotLeader is returned instead of writing once the Config.IsLeader fence is closed.
var ErrNotLeader = errors.New("dns: not the leader, not writing")

// Config configures the controller. Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Store holds DNSRecords, Nodes and Leases. Required.
	Store Store
	// View is the gossip view of nodes. Nil: none (node health from the store alone).
	View observed.View
	// Provider is the Cloudflare API. Required.
	Provider Provider
	// IsLeader is checked before every write to Cloudflare and to status. Nil: always leader
	// (the agent runs the controller only under the "controller" Lease, whose leader context is
	// the outer fence, and passes the elector's IsLeader here as the inner one).
	IsLeader func() bool
	// Logger. Default slog.Default(); the controller adds controller=dns.
	Logger *slog.Logger
	// Clock is the time the controller reads and the workqueue's delays run on (Run passes it
	// to ctrl.Options.Clock unless that is set, and to observed.OnChange). Default
	// clock.RealClock{}.
	Clock clock.WithTicker
	// Cluster names the cluster in ownership comments: a DNS label of at most 16 characters.
	// Default "constellation".
	Cluster string
	// Resync is how often each zone in use is listed (once, paginated) to correct drift: a
	// record edited or deleted by hand is restored within about Resync. Default 1m; the cost
	// is zones × ceil(records/pageSize) list calls per Resync (one zone of 1,000 records: 10
	// calls a minute, 50 of the budget's 1,000 per 5 minutes).
	Resync time.Duration
	// Coalesce is the delay before acting on node and lease changes, so that a burst of them
	// costs one pass. Default 1s.
	Coalesce time.Duration
	// NodeGrace is how long a lost node (pkg/nodehealth) keeps its records. Default 30s.
	NodeGrace time.Duration
	// Health holds the node-health timings (the restart grace). Zero fields take nodehealth's
	// defaults (RestartGrace: nodehealth.DefaultRestartGrace).
	Health nodehealth.Policy
	// NodeRecordsZone, when set, asks for <node>.<zone> A (or AAAA) records for every Ready
	// node. Default "" (none). The agent's --dns.nodeRecords.zone.
	NodeRecordsZone string
	// NodeRecordsTTL is the TTL of per-node records. Default 60.
	NodeRecordsTTL int
	// ReconcileTimeout bounds one reconcile, waits for the request budget included. Default 30s.
	ReconcileTimeout time.Duration
	// StatusRefresh is how stale status.lastSyncTime may grow on a record found converged
	// again and again with nothing else to report: it is rewritten when the status changes
	// otherwise, or when older than this. Default 10m.
	StatusRefresh time.Duration
	// ConflictRequeue is how soon a reconcile that hit a store conflict or a record that
	// appeared meanwhile runs again. Default 1s.
	ConflictRequeue time.Duration
	// Events receives DNSRecordWritten and DNSRecordFailed Events (events.go). Nil: none.
	Events *events.Recorder
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Cluster: "constellation", Resync: time.Minute, Coalesce: time.Second, NodeGrace: 30 * time.Second,
		NodeRecordsTTL: 60, ReconcileTimeout: 30 * time.Second, ConflictRequeue: time.Second, StatusRefresh: 10 * time.Minute}
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("dns: config: Store is required")
	}
	if c.Provider == nil {
		return errors.New("dns: config: Provider is required")
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return true }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	d := DefaultConfig()
	if c.Cluster == "" {
		c.Cluster = d.Cluster
	}
	if c.Resync <= 0 {
		c.Resync = d.Resync
	}
	if c.Coalesce <= 0 {
		c.Coalesce = d.Coalesce
	}
	if c.NodeGrace < 0 {
		return fmt.Errorf("dns: nodeGrace must not be negative, got %s", c.NodeGrace)
	}
	if c.NodeGrace == 0 {
		c.NodeGrace = d.NodeGrace
	}
	if c.NodeRecordsTTL == 0 {
		c.NodeRecordsTTL = d.NodeRecordsTTL
	}
	if c.ReconcileTimeout <= 0 {
		c.ReconcileTimeout = d.ReconcileTimeout
	}
	if c.ConflictRequeue <= 0 {
		c.ConflictRequeue = d.ConflictRequeue
	}
	if c.StatusRefresh <= 0 {
		c.StatusRefresh = d.StatusRefresh
	}
	if !v1.IsDNSLabel(c.Cluster) || len(c.Cluster) > 16 {
		return fmt.Errorf("dns: cluster must be a DNS label of at most 16 characters (it goes in 100-character record comments), got %q", c.Cluster)
	}
	c.NodeRecordsZone = strings.TrimSuffix(strings.ToLower(c.NodeRecordsZone), ".")
	if c.NodeRecordsZone != "" && (!v1.IsDNSName(c.NodeRecordsZone, false) || !strings.Contains(c.NodeRecordsZone, ".")) {
		return fmt.Errorf("dns: nodeRecords.zone must be a domain like \"example.com\", got %q", c.NodeRecordsZone)
	}
	if c.NodeRecordsTTL != 1 && (c.NodeRecordsTTL < 60 || c.NodeRecordsTTL > 86400) {
		return fmt.Errorf("dns: nodeRecords.ttl must be 1 or 60-86400, got %d", c.NodeRecordsTTL)
	}
	return nil
}

// Controller converges DNSRecords and per-node records in Cloudflare.
type Controller struct {
	st     Store
	view   observed.View
	p      Provider
	cfg    Config
	leader func() bool
	clock  clock.WithTicker
	log    *slog.Logger

	syncs     *prometheus.CounterVec
	corrected prometheus.Counter
	writes    *prometheus.CounterVec
	driftG    prometheus.GaugeFunc
	foreignG  prometheus.GaugeFunc
	// brakeOn is 1 while the disruption brake is on; brakedDeletes counts the record
	// deletions it held back (once per pass that held them).
	brakeOn       prometheus.Gauge
	brakedDeletes prometheus.Counter

	mu sync.Mutex
	// guarded by mu:
	applied map[Key]string // digest of the wanted records last converged
	gens    map[string]genSeen
	drift   map[Key]int // records found differing from wanted and left so
	foreign map[Key]int // foreign records in the way
	enqueue func(Key, time.Duration)
	running bool

	// namedTargets holds the keys of the targets passes done under a Key.Name (struct{}
	// values). A targets pass makes no API call and ignores Key.Name, so a test queues one
	// under a name of its own behind the other keys and waits for it here: the loop's settled
	// signal (one worker, FIFO). The controller itself never names one: this stays empty.
	namedTargets sync.Map
}

type genSeen struct {
	generation int64
	deleting   bool
}

var _ reconcile.TypedReconciler[Key] = (*Controller)(nil)

// New returns a controller.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Controller{st: cfg.Store, view: cfg.View, p: cfg.Provider, cfg: cfg, leader: cfg.IsLeader, clock: cfg.Clock,
		log:     cfg.Logger.With("controller", "dns"),
		applied: map[Key]string{}, gens: map[string]genSeen{}, drift: map[Key]int{}, foreign: map[Key]int{}}
	c.syncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "constellation_dns_syncs_total",
		Help: "DNS reconciles by kind (record, node_records, zone) and result (synced, foreign, no_target, braked, rate_limited, error, not_leader).",
	}, []string{"kind", "result"})
	c.corrected = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "constellation_dns_records_corrected_total",
		Help: "Records created, updated or deleted in Cloudflare to match what is wanted.",
	})
	c.writes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "constellation_dns_provider_writes_total",
		Help: "Writes to Cloudflare by operation (create, update, delete).",
	}, []string{"op"})
	c.driftG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "constellation_dns_records_drift",
		Help: "Records that differ from what is wanted and could not be converged at the last sync (blocked by a foreign record, or a write that failed).",
	}, func() float64 { return c.sum(c.drift) })
	c.foreignG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "constellation_dns_foreign_records",
		Help: "Records not owned by this cluster standing in the way of a wanted record.",
	}, func() float64 { return c.sum(c.foreign) })
	c.brakeOn = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "constellation_dns_deletion_brake",
		Help: "1 while more than half the nodes look lost at once and DNS deletes no record that follows nodes (the disruption brake), else 0.",
	})
	c.brakedDeletes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "constellation_dns_deletions_braked_total",
		Help: "Record deletions held back by the disruption brake, counted once per pass that held them.",
	})
	return c, nil
}

// Collectors returns the controller's metrics, for the agent to register.
func (c *Controller) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.syncs, c.corrected, c.writes, c.driftG, c.foreignG, c.brakeOn, c.brakedDeletes}
}

func (c *Controller) sum(m map[Key]int) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range m {
		n += v
	}
	return float64(n)
}

func (c *Controller) forget(k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.applied, k)
	delete(c.drift, k)
	delete(c.foreign, k)
}

func (c *Controller) record(k Key, digest string, drift, foreign int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if digest != "" {
		c.applied[k] = digest
	}
	c.drift[k], c.foreign[k] = drift, foreign
}

// Reconcile implements reconcile.TypedReconciler.
func (c *Controller) Reconcile(ctx context.Context, key Key) (reconcile.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ReconcileTimeout)
	defer cancel()
	switch key.Kind {
	case KindTargets:
		return c.reconcileTargets(ctx, key)
	case KindResync:
		return c.reconcileResync(ctx)
	case KindZone:
		if !c.leader() {
			c.syncs.WithLabelValues("zone", "not_leader").Inc()
			return reconcile.Result{RequeueAfter: c.cfg.Resync}, nil
		}
		return c.reconcileZone(ctx, key.Name)
	case KindNodeRecords:
		if !c.leader() {
			c.syncs.WithLabelValues("node_records", "not_leader").Inc()
			return reconcile.Result{RequeueAfter: c.cfg.Resync}, nil
		}
		return c.reconcileNodeRecords(ctx)
	case KindDNSRecord:
		if !c.leader() {
			c.syncs.WithLabelValues("record", "not_leader").Inc()
			return reconcile.Result{RequeueAfter: c.cfg.Resync}, nil
		}
		return c.reconcileRecord(ctx, key)
	}
	return reconcile.Result{}, reconcile.TerminalError(fmt.Errorf("dns: unknown key kind %q", key.Kind))
}

// snapshot reads the cluster: Node and Lease objects (stale reads are fine: the next change
// wakes us again) and the gossip view.
func (c *Controller) snapshot(ctx context.Context) (Cluster, error) {
	cl := Cluster{Leases: map[string]*v1.Lease{}, Now: c.clock.Now(), Grace: c.cfg.NodeGrace, Health: c.cfg.Health}
	nodes, _, err := c.st.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return cl, fmt.Errorf("list nodes: %w", err)
	}
	for _, o := range nodes {
		cl.Nodes = append(cl.Nodes, o.(*v1.Node))
	}
	leases, _, err := c.st.List(ctx, v1.KindLease, v1.Selector{}, store.Stale())
	if err != nil {
		return cl, fmt.Errorf("list leases: %w", err)
	}
	for _, o := range leases {
		l := o.(*v1.Lease)
		cl.Leases[l.Metadata.Name] = l
	}
	if c.view != nil {
		cl.View = c.view.Nodes()
	}
	if cl.brake().on {
		c.brakeOn.Set(1)
	} else {
		c.brakeOn.Set(0)
	}
	return cl, nil
}

// reconcileTargets recomputes, in memory, the wanted records of every DNSRecord that follows a
// target and of the per-node records, and enqueues those whose wanted records changed since they
// were last converged. It makes no API calls: this is where bursts of node and lease changes
// are absorbed.
func (c *Controller) reconcileTargets(ctx context.Context, key Key) (reconcile.Result, error) {
	if key.Name != "" {
		defer c.namedTargets.Store(key, struct{}{})
	}
	cl, err := c.snapshot(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	objs, _, err := c.st.List(ctx, v1.KindDNSRecord, v1.Selector{}, store.Stale())
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("list dnsrecords: %w", err)
	}
	var recheck time.Time
	var changed []Key
	c.mu.Lock()
	for _, o := range objs {
		rec := o.(*v1.DNSRecord)
		if rec.Spec.Target == nil || rec.Metadata.DeletionTimestamp != nil {
			continue
		}
		k := Key{KindDNSRecord, rec.Metadata.Name}
		w := WantedRecords(rec, cl, Owner(c.cfg.Cluster, rec.Metadata.Name))
		recheck = earliest(recheck, w.RecheckAt)
		// A record never converged in this term is already queued (or retrying): skip it.
		if d, ok := c.applied[k]; ok && d != w.Digest() {
			changed = append(changed, k)
		}
	}
	if c.cfg.NodeRecordsZone != "" {
		w := WantedNodeRecords(c.cfg.NodeRecordsZone, c.cfg.NodeRecordsTTL, c.cfg.Cluster, cl)
		recheck = earliest(recheck, w.RecheckAt)
		if d, ok := c.applied[nodeRecordsKey]; ok && d != w.Digest() {
			changed = append(changed, nodeRecordsKey)
		}
	}
	enqueue := c.enqueue
	c.mu.Unlock()
	if enqueue != nil {
		for _, k := range changed {
			enqueue(k, 0)
		}
	}
	if recheck.IsZero() {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: max(recheck.Sub(cl.Now), 10*time.Millisecond)}, nil
}

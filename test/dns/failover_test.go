package dnstest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/controllers/dns"
	leasectl "github.com/constellation-sh/constellation/controllers/lease"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/election"
	"github.com/constellation-sh/constellation/pkg/store"
	fake "github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

const (
	token = "failover-test-token-0123456789"
	zone  = "example.com"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// partStore is one agent's access to the replicated store; cut makes it fail like a node cut off
// from the quorum (or killed).
type partStore struct {
	store.Store
	cut atomic.Bool
}

func (p *partStore) Get(ctx context.Context, kind, name string, o ...store.ReadOption) (v1.Object, error) {
	if p.cut.Load() {
		return nil, store.ErrUnavailable
	}
	return p.Store.Get(ctx, kind, name, o...)
}

func (p *partStore) Create(ctx context.Context, obj v1.Object) (v1.Object, error) {
	if p.cut.Load() {
		return nil, store.ErrUnavailable
	}
	return p.Store.Create(ctx, obj)
}

func (p *partStore) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	if p.cut.Load() {
		return nil, store.ErrUnavailable
	}
	return p.Store.Update(ctx, obj)
}

func (p *partStore) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	if p.cut.Load() {
		return nil, store.ErrUnavailable
	}
	return p.Store.UpdateStatus(ctx, obj)
}

func (p *partStore) List(ctx context.Context, kind string, sel v1.Selector, o ...store.ReadOption) ([]v1.Object, int64, error) {
	if p.cut.Load() {
		return nil, 0, store.ErrUnavailable
	}
	return p.Store.List(ctx, kind, sel, o...)
}

// writeLog records when one agent's controller wrote to Cloudflare.
type writeLog struct {
	dns.Provider
	mu    sync.Mutex
	times []time.Time
}

func (w *writeLog) note() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.times = append(w.times, time.Now())
}

func (w *writeLog) writes() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.times...)
}

func (w *writeLog) CreateRecord(ctx context.Context, z string, r cloudflare.Record) (cloudflare.Record, error) {
	w.note()
	return w.Provider.CreateRecord(ctx, z, r)
}

func (w *writeLog) UpdateRecord(ctx context.Context, z string, r cloudflare.Record) (cloudflare.Record, error) {
	w.note()
	return w.Provider.UpdateRecord(ctx, z, r)
}

func (w *writeLog) DeleteRecord(ctx context.Context, z, id string) error {
	w.note()
	return w.Provider.DeleteRecord(ctx, z, id)
}

// agent is the DNS-related part of one node's agent: its lb campaign and, under the controller
// Lease, its DNS controller.
type agent struct {
	name string
	// st is what the electors use, ctlSt what the DNS controller uses (stale local reads
	// may keep working on a node cut off from the quorum).
	st, ctlSt  *partStore
	campaign   *leasectl.Campaign
	controller *election.Elector
	log        *writeLog
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

type cluster struct {
	t      *testing.T
	st     *store.Memory
	cf     *fake.Server
	url    string
	agents []*agent
	leaseD time.Duration
}

func newCluster(t *testing.T, nodes int, leaseD time.Duration) *cluster {
	c := &cluster{t: t, st: store.NewMemory(), cf: fake.New(fake.WithToken(token)), leaseD: leaseD}
	c.cf.AddZone(zone)
	var stop func()
	c.url, stop = c.cf.Start()
	t.Cleanup(stop)
	ctx := context.Background()
	for i := 1; i <= nodes; i++ {
		n := &v1.Node{}
		n.Metadata.Name = fmt.Sprintf("n%d", i)
		n.Spec.Labels = map[string]string{"role": "lb"}
		n.Default()
		obj, err := c.st.Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		n = obj.(*v1.Node)
		n.Status.Addresses.Advertise = fmt.Sprintf("10.0.0.%d", i)
		n.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastTransitionTime: time.Now()}}
		if _, err := c.st.UpdateStatus(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// start runs agent name: the lb campaign and the controller election running the DNS controller.
func (c *cluster) start(name string) *agent {
	t := c.t
	a := &agent{name: name, st: &partStore{Store: c.st}, ctlSt: &partStore{Store: c.st}}
	client, err := cloudflare.New(cloudflare.NewToken(token), cloudflare.Config{APIURL: c.url}, cloudflare.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	a.log = &writeLog{Provider: client}
	elCfg := func(l string) election.Config {
		cfg := election.DefaultConfig(l, name)
		cfg.Store, cfg.Duration, cfg.Logger = a.st, c.leaseD, quiet
		return cfg
	}
	a.controller, err = election.New(elCfg(v1.LeaseController))
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := dns.New(dns.Config{Store: a.ctlSt, Provider: a.log, IsLeader: a.controller.IsLeader, Logger: quiet, Coalesce: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a.campaign, err = leasectl.New(leasectl.Config{Store: a.st, Node: name, Logger: quiet, NewElector: func() (leasectl.Elector, error) {
		return election.New(elCfg(v1.LeaseLB))
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.done.Add(2)
	go func() { defer a.done.Done(); a.campaign.Run(ctx, ctrl.Options{Logger: quiet}) }()
	go func() {
		defer a.done.Done()
		a.controller.Run(ctx, func(lctx context.Context) { ctl.Run(lctx, ctrl.Options{Logger: quiet}) })
	}()
	c.agents = append(c.agents, a)
	t.Cleanup(func() { a.cancel(); a.done.Wait() })
	return a
}

// kill cuts the agent off the store first (so it cannot release anything), then stops it.
func (a *agent) kill() {
	a.st.cut.Store(true)
	a.ctlSt.cut.Store(true)
	a.cancel()
	a.done.Wait()
}

func (c *cluster) holder(l string) string {
	obj, err := c.st.Get(context.Background(), v1.KindLease, l)
	if err != nil {
		return ""
	}
	return obj.(*v1.Lease).Spec.HolderIdentity
}

func (c *cluster) lbRecord() []fake.Record {
	var out []fake.Record
	for _, r := range c.cf.Records(zone) {
		if r.Name == "lb."+zone {
			out = append(out, r)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// updateOrCreate reads kind/name, lets change build the object to write from it (nil: it does
// not exist yet) and writes it, compare-and-swap on the resourceVersion read; on a conflict
// (someone wrote in between) it reads and changes again.
func updateOrCreate(ctx context.Context, st store.Store, kind, name string, change func(v1.Object) v1.Object) error {
	backoff := retry.DefaultRetry
	backoff.Steps = 10
	return retry.OnError(backoff, func(err error) bool {
		return errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists)
	}, func() error {
		cur, err := st.Get(ctx, kind, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err = st.Create(ctx, change(nil))
			return err
		case err != nil:
			return err
		}
		_, err = st.Update(ctx, change(cur.DeepCopyObject()))
		return err
	})
}

func addr(node string) string { return "10.0.0." + node[1:] }

// TestLBRecordFollowsLeaderThroughKill: three agents campaign for lb and for controller; lb.<zone>
// points at the lb holder. The holder is killed (cut off from the store, so it releases nothing);
// the record must point at the new holder. The time and the API calls it took are logged.
func TestLBRecordFollowsLeaderThroughKill(t *testing.T) {
	const leaseD = 2 * time.Second
	c := newCluster(t, 3, leaseD)
	for _, n := range []string{"n1", "n2", "n3"} {
		c.start(n)
	}
	d := &v1.DNSRecord{Spec: v1.DNSRecordSpec{Zone: zone, Name: "lb." + zone, Type: v1.RecordA, Target: &v1.DNSTarget{Lease: v1.LeaseLB}}}
	d.Metadata.Name = "lb"
	d.Default()
	if _, err := c.st.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		var old string
		waitFor(t, 20*time.Second, "lb record on the lb holder", func() bool {
			old = c.holder(v1.LeaseLB)
			r := c.lbRecord()
			return old != "" && len(r) == 1 && r[0].Content == addr(old)
		})
		var victim *agent
		for _, a := range c.agents {
			if a.name == old {
				victim = a
			}
		}
		alsoController := c.holder(v1.LeaseController) == old
		c.cf.ResetCalls()
		start := time.Now()
		victim.kill()
		var now string
		waitFor(t, 30*time.Second, "lb record on the new holder", func() bool {
			now = c.holder(v1.LeaseLB)
			r := c.lbRecord()
			return now != "" && now != old && len(r) == 1 && r[0].Content == addr(now)
		})
		took := time.Since(start)
		counts := c.cf.CallCounts()
		t.Logf("round %d: killed %s (lb holder; controller holder too: %v); lb.%s → %s after %s (lease duration %s); API calls: %d (%v)",
			round, old, alsoController, zone, addr(now), took.Round(10*time.Millisecond), leaseD, len(c.cf.Calls()), counts)
		if took > 5*leaseD {
			t.Errorf("failover took %s, more than 5× the lease duration", took)
		}
		if n := c.cf.Writes(); n != 1 {
			t.Errorf("failover wrote %d times, want 1 (an in-place update)", n)
		}
	}
}

// TestOneWriterUnderPartition: two agents run the DNS controller under the controller Lease. The
// holder's elector is cut off from the quorum while its controller can still read the store (as
// stale local reads can) and so would still write, while records keep changing. Every write of
// the old holder must come before every write of the new one: never two writers at once.
func TestOneWriterUnderPartition(t *testing.T) {
	const leaseD = 2 * time.Second
	c := newCluster(t, 2, leaseD)
	a1, a2 := c.start("n1"), c.start("n2")
	ctx := context.Background()
	names := []string{"r1", "r2", "r3"}
	put := func(i int) {
		for _, n := range names {
			spec := v1.DNSRecordSpec{Zone: zone, Name: n + "." + zone, Type: v1.RecordTXT, Content: fmt.Sprintf("v%d", i)}
			// The controller writes these objects too (finalizer, status): a read-modify-write
			// that loses the race is retried on a fresh read, as any client must.
			if err := updateOrCreate(ctx, c.st, v1.KindDNSRecord, n, func(o v1.Object) v1.Object {
				if o == nil {
					d := &v1.DNSRecord{Spec: spec}
					d.Metadata.Name = n
					d.Default()
					return d
				}
				d := o.(*v1.DNSRecord)
				d.Spec = spec
				d.Default()
				return d
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0)
	waitFor(t, 20*time.Second, "records created", func() bool { return len(c.cf.Records(zone)) == 3 })
	holder := c.holder(v1.LeaseController)
	old, next := a1, a2
	if holder == "n2" {
		old, next = a2, a1
	}
	// Cut the holder's elector off; its controller keeps reading. What stops it writing is the
	// leader context ending and the IsLeader gate before each write.
	cutAt := time.Now()
	old.st.cut.Store(true)
	for i := 1; i <= 30; i++ {
		put(i)
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, 20*time.Second, "the new holder converging", func() bool {
		for _, r := range c.cf.Records(zone) {
			if r.Content != "v30" {
				return false
			}
		}
		return true
	})
	var lastOld time.Time
	for _, w := range old.log.writes() {
		if w.After(lastOld) {
			lastOld = w
		}
	}
	firstNext := time.Time{}
	for _, w := range next.log.writes() {
		if firstNext.IsZero() || w.Before(firstNext) {
			firstNext = w
		}
	}
	t.Logf("old holder %s: %d writes, last %s after the cut; new holder %s: %d writes, first %s after the cut",
		old.name, len(old.log.writes()), lastOld.Sub(cutAt).Round(time.Millisecond), next.name, len(next.log.writes()), firstNext.Sub(cutAt).Round(time.Millisecond))
	if !lastOld.IsZero() && !firstNext.IsZero() && !lastOld.Before(firstNext) {
		t.Fatalf("two writers: the old holder wrote at %s, after the new one started at %s", lastOld, firstNext)
	}
	if len(next.log.writes()) == 0 {
		t.Fatal("the new holder never wrote")
	}
}

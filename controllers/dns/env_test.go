package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
	fake "github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

const (
	testToken = "dns-test-token-1234567890"
	zone      = "example.com"
)

var testLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// env is one cluster's store, the fake Cloudflare, a budgeted client and a controller. Time is
// one fake clock shared by the store, the client, the controller and its workqueue: waits for
// the budget and for Retry-After advance it instead of sleeping, and the loop's delays
// (Coalesce, Resync, requeues) fire when a test steps it.
type env struct {
	t      testing.TB
	ctx    context.Context
	clock  testClock
	st     *store.Memory
	view   *observed.Set
	cf     *fake.Server
	client *cloudflare.Client
	ctl    *Controller
	cfg    Config
	// flushes names flush's keys.
	flushes int
}

// testClock is the env's one clock, a k8s fake clock: the controller and its workqueue read it,
// and the client through cfClock.
type testClock struct{ *clocktesting.FakeClock }

// Advance steps the clock by d, when positive.
func (c testClock) Advance(d time.Duration) {
	if d > 0 {
		c.Step(d)
	}
}

// cfClock is the client's view of a testClock: its Sleep steps the clock (as
// cloudflaretest.StepClock's does), so waiting for the budget or a Retry-After costs no wall
// time.
type cfClock struct{ testClock }

var _ cloudflare.Clock = cfClock{}

// Sleep implements cloudflare.Clock.
func (c cfClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

func newEnv(t testing.TB, cfg Config, ccfg cloudflare.Config) *env {
	t.Helper()
	clock := testClock{clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	e := &env{t: t, ctx: context.Background(), clock: clock, st: store.NewMemory(store.MemoryConfig{Clock: clock}), view: observed.NewSet(), cfg: cfg}
	e.cf = fake.New(fake.WithToken(testToken), fake.WithClock(clock.Now))
	e.cf.AddZone(zone)
	url, stop := e.cf.Start()
	t.Cleanup(stop)
	ccfg.APIURL, ccfg.Clock = url, cfClock{clock}
	var err error
	e.client, err = cloudflare.New(cloudflare.NewToken(testToken), ccfg, cloudflare.WithLogger(testLog))
	if err != nil {
		t.Fatal(err)
	}
	e.ctl, err = New(e.config(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitStepping waits for cond, stepping the clock by step between checks: the loop's delays
// (Coalesce, Resync, requeues) fall due as the clock reaches them.
func (e *env) waitStepping(what string, step time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s (clock stepped to %s)", what, e.clock.Now())
		}
		e.clock.Advance(step)
		time.Sleep(2 * time.Millisecond)
	}
}

// flush returns once every key ctl's running loop had queued when flush was called has been
// reconciled: it queues a targets pass under a key of its own behind them (one worker, FIFO;
// the pass makes no API call) and waits for it to be done. Keys those reconciles queue in turn
// are not waited for: flush again for them.
func (e *env) flush(ctl *Controller) {
	e.t.Helper()
	e.flushes++
	k := Key{Kind: KindTargets, Name: fmt.Sprintf("flush-%d", e.flushes)}
	waitFor(e.t, "the loop to run", func() bool {
		ctl.mu.Lock()
		defer ctl.mu.Unlock()
		if ctl.enqueue == nil {
			return false
		}
		ctl.enqueue(k, 0)
		return true
	})
	waitFor(e.t, "the loop to reach "+k.String(), func() bool { _, ok := ctl.namedTargets.Load(k); return ok })
}

// config completes cfg with the env's store, view, client, clock and logger.
func (e *env) config(cfg Config) Config {
	cfg.Store, cfg.View, cfg.Provider, cfg.Clock, cfg.Logger = e.st, e.view, e.client, e.clock, testLog
	return cfg
}

func (e *env) node(name, addr string, labels map[string]string, ready bool) {
	e.t.Helper()
	st := v1.ConditionFalse
	if ready {
		st = v1.ConditionTrue
	}
	e.retry(func() error {
		obj, err := e.st.Get(e.ctx, v1.KindNode, name)
		if errors.Is(err, store.ErrNotFound) {
			n := &v1.Node{}
			n.Metadata.Name = name
			n.Spec.Labels = labels
			n.Default()
			obj, err = e.st.Create(e.ctx, n)
		} else if err == nil {
			cur := obj.(*v1.Node)
			cur.Spec.Labels = labels
			obj, err = e.st.Update(e.ctx, cur)
		}
		if err != nil {
			return err
		}
		cur := obj.(*v1.Node)
		cur.Status.Addresses.Advertise = addr
		v1.SetCondition(&cur.Status.Conditions, v1.Condition{Type: v1.NodeReady, Status: st, LastTransitionTime: e.clock.Now()})
		_, err = e.st.UpdateStatus(e.ctx, cur)
		return err
	})
}

// retry runs the read-modify-write f again on a fresh read when it lost a race with another
// writer (store.ErrConflict): a controller running alongside writes the same objects.
func (e *env) retry(f func() error) {
	e.t.Helper()
	b := retry.DefaultRetry
	b.Steps = 10
	if err := retry.OnError(b, func(err error) bool { return errors.Is(err, store.ErrConflict) }, f); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) lease(name, holder string) {
	e.t.Helper()
	e.retry(func() error {
		obj, err := e.st.Get(e.ctx, v1.KindLease, name)
		if errors.Is(err, store.ErrNotFound) {
			l := &v1.Lease{}
			l.Metadata.Name = name
			l.Spec.HolderIdentity = holder
			l.Default()
			_, err = e.st.Create(e.ctx, l)
			return err
		}
		if err != nil {
			return err
		}
		l := obj.(*v1.Lease)
		l.Spec.HolderIdentity = holder
		l.Spec.LeaseTransitions++
		l.Default()
		_, err = e.st.Update(e.ctx, l)
		return err
	})
}

func (e *env) record(name string, spec v1.DNSRecordSpec) {
	e.t.Helper()
	d := &v1.DNSRecord{Spec: spec}
	d.Metadata.Name = name
	d.Default()
	e.retry(func() error {
		obj, err := e.st.Get(e.ctx, v1.KindDNSRecord, name)
		if errors.Is(err, store.ErrNotFound) {
			_, err = e.st.Create(e.ctx, d.DeepCopyObject())
			return err
		}
		if err != nil {
			return err
		}
		cur := obj.(*v1.DNSRecord)
		cur.Spec = d.Spec
		_, err = e.st.Update(e.ctx, cur)
		return err
	})
}

func (e *env) get(name string) *v1.DNSRecord {
	e.t.Helper()
	obj, err := e.st.Get(e.ctx, v1.KindDNSRecord, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return obj.(*v1.DNSRecord)
}

// reconcile runs Reconcile for key until it asks for nothing sooner than the resync (a short
// requeue after a conflict or a 429 is followed at once: the step clock makes waits free).
func (e *env) reconcile(key Key) reconcile.Result {
	e.t.Helper()
	for range 50 {
		res, err := e.ctl.Reconcile(e.ctx, key)
		if err != nil {
			e.t.Fatalf("reconcile %s: %v", key, err)
		}
		if res.RequeueAfter == 0 || res.RequeueAfter >= e.ctl.cfg.Resync || res.RequeueAfter >= e.ctl.cfg.NodeGrace/2 {
			return res
		}
		e.clock.Advance(res.RequeueAfter)
	}
	e.t.Fatalf("reconcile %s did not settle", key)
	return reconcile.Result{}
}

func rec(name string) Key { return Key{KindDNSRecord, name} }

// records returns the fake's records named name (all types).
func (e *env) records(name string) []fake.Record {
	var out []fake.Record
	for _, r := range e.cf.Records(zone) {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

func contents(rs []fake.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Type + " " + r.Content
	}
	return out
}

func synced(d *v1.DNSRecord) *v1.Condition {
	return v1.FindCondition(d.Status.Conditions, v1.DNSSynced)
}

// gate is a leader fence a test flips.
type gate struct{ on atomic.Bool }

func (g *gate) IsLeader() bool { return g.on.Load() }

// countingProvider counts the writes one controller makes.
type countingProvider struct {
	Provider
	writes atomic.Int64
}

func (p *countingProvider) CreateRecord(ctx context.Context, z string, r cloudflare.Record) (cloudflare.Record, error) {
	p.writes.Add(1)
	return p.Provider.CreateRecord(ctx, z, r)
}

func (p *countingProvider) UpdateRecord(ctx context.Context, z string, r cloudflare.Record) (cloudflare.Record, error) {
	p.writes.Add(1)
	return p.Provider.UpdateRecord(ctx, z, r)
}

func (p *countingProvider) DeleteRecord(ctx context.Context, z, id string) error {
	p.writes.Add(1)
	return p.Provider.DeleteRecord(ctx, z, id)
}

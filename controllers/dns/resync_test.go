package dns

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/store"
	fake "github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

var zoneKey = Key{KindZone, zone}

// converged puts n literal DNSRecords r0..r(n-1) in the store, finalized, and their records in
// the fake as the controller would have written them: the state after a first convergence,
// without paying n creates through the budget.
func (e *env) converged(n int) {
	e.t.Helper()
	for i := range n {
		name := fmt.Sprintf("r%d", i)
		d := &v1.DNSRecord{Spec: v1.DNSRecordSpec{Zone: zone, Name: name + "." + zone, Type: v1.RecordA, Content: ip(i)}}
		d.Metadata.Name = name
		d.Metadata.Finalizers = []string{Finalizer}
		d.Default()
		if _, err := e.st.Create(e.ctx, d); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.cf.PutRecord(zone, fake.Record{Type: "A", Name: name, Content: ip(i), TTL: v1.DefaultDNSTTL, Comment: Owner(e.ctl.cfg.Cluster, name)}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func ip(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// listCalls counts the record listings the fake answered.
func (e *env) listCalls() int { return e.cf.CallCount(http.MethodGet, fake.PatternRecords) }

// TestZoneResyncCost: a resync lists the zone once, page by page: with 23 records and pages of
// 5, five list calls and nothing else, however many records; a per-record resync cost 23.
func TestZoneResyncCost(t *testing.T) {
	const n, perPage = 23, 5
	e := newEnv(t, Config{}, cloudflare.Config{PageSize: perPage})
	e.converged(n)
	e.reconcile(zoneKey) // looks up the zone id once (cached after)
	e.cf.ResetCalls()
	e.reconcile(zoneKey)
	pages := (n + perPage - 1) / perPage
	if got, all, w := e.listCalls(), len(e.cf.Calls()), e.cf.Writes(); got != pages || all != pages || w != 0 {
		t.Fatalf("a resync of %d converged records: %d list calls, %d calls in all, %d writes; want %d, %d, 0", n, got, all, w, pages, pages)
	}
	// Every record's status says synced by the zone pass.
	for i := range n {
		if c := synced(e.get(fmt.Sprintf("r%d", i))); c == nil || c.Status != v1.ConditionTrue {
			t.Fatalf("r%d: %+v", i, c)
		}
	}
	// Nor does a resync of converged records write their status again (only lastSyncTime
	// would change) until StatusRefresh has passed.
	rv := e.get("r0").Metadata.ResourceVersion
	e.clock.Advance(e.ctl.cfg.Resync)
	e.reconcile(zoneKey)
	if got := e.get("r0").Metadata.ResourceVersion; got != rv {
		t.Fatalf("a converged record's status was rewritten by the resync: rv %s → %s", rv, got)
	}
	e.clock.Advance(e.ctl.cfg.StatusRefresh)
	e.reconcile(zoneKey)
	if d := e.get("r0"); d.Metadata.ResourceVersion == rv || !d.Status.LastSyncTime.Equal(e.clock.Now()) {
		t.Fatalf("lastSyncTime not refreshed after StatusRefresh: %+v", d.Status)
	}
}

// TestZoneResyncCorrectsDrift: one record deleted by hand, one edited by hand (content, TTL),
// one foreign record added at a third record's name: one resync restores the first two and
// reports the third, for one listing plus the two writes.
func TestZoneResyncCorrectsDrift(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	e.converged(12)
	e.reconcile(zoneKey)
	byName := map[string]fake.Record{}
	for _, r := range e.cf.Records(zone) {
		byName[r.Name] = r
	}
	e.cf.DeleteRecord(zone, byName["r3."+zone].ID)
	edited := byName["r7."+zone]
	edited.Content, edited.TTL = "203.0.113.7", 3600
	if _, err := e.cf.PutRecord(zone, edited); err != nil {
		t.Fatal(err)
	}
	foreign, _ := e.cf.PutRecord(zone, fake.Record{Type: "A", Name: "r9", Content: "203.0.113.9", TTL: 300, Comment: "by hand"})
	e.cf.ResetCalls()
	e.reconcile(zoneKey)
	if got := e.records("r3." + zone); len(got) != 1 || got[0].Content != ip(3) {
		t.Fatalf("deleted by hand, after one resync: %+v", got)
	}
	if got := e.records("r7." + zone); len(got) != 1 || got[0].Content != ip(7) || got[0].TTL != v1.DefaultDNSTTL || got[0].ID != edited.ID {
		t.Fatalf("edited by hand, after one resync: %+v", got)
	}
	if c := synced(e.get("r9")); c.Reason != v1.ReasonForeignRecord || !slices.ContainsFunc(e.records("r9."+zone), func(r fake.Record) bool { return r.ID == foreign.ID }) {
		t.Fatalf("foreign record beside r9: %+v", c)
	}
	if got, w := e.listCalls(), e.cf.Writes(); got != 1 || w != 2 {
		t.Fatalf("the drift resync cost %d list calls and %d writes, want 1 and 2", got, w)
	}
	if d := e.get("r3"); len(d.Status.Records) != 1 || d.Status.Records[0].ID != e.records("r3." + zone)[0].ID {
		t.Fatalf("status of the recreated record: %+v", d.Status.Records)
	}
}

// TestZoneResyncNodeRecordsAndZones: the resync pass enqueues each zone in use once (the node
// records' zone included); the node records' zone pass converges them from the same listing.
func TestZoneResyncNodeRecordsAndZones(t *testing.T) {
	e := newEnv(t, Config{NodeRecordsZone: zone}, cloudflare.Config{})
	e.cf.AddZone("example.org")
	e.converged(3)
	e.record("o", v1.DNSRecordSpec{Zone: "example.org", Name: "o.example.org", Type: v1.RecordA, Content: "192.0.2.1"})
	e.node("n1", "10.0.0.1", nil, true)
	var got []Key
	e.ctl.enqueue = func(k Key, _ time.Duration) { got = append(got, k) }
	if res, err := e.ctl.Reconcile(e.ctx, resyncKey); err != nil || res.RequeueAfter != e.ctl.cfg.Resync {
		t.Fatalf("resync pass: %v %+v", err, res)
	}
	if !slices.Equal(got, []Key{zoneKey, {KindZone, "example.org"}}) || len(e.cf.Calls()) != 0 {
		t.Fatalf("resync pass enqueued %v with %d API calls", got, len(e.cf.Calls()))
	}
	e.reconcile(zoneKey)
	if got := e.nodeRecordNames(); got != "n1" {
		t.Fatalf("node records after the zone pass: %q", got)
	}
	// The zone pass leaves a record it has not finalized yet to its own reconcile.
	if len(e.cf.Records("example.org")) != 0 {
		t.Fatal("example.org touched by example.com's pass")
	}
	e.reconcile(Key{KindZone, "example.org"})
	if len(e.cf.Records("example.org")) != 0 {
		t.Fatal("the zone pass converged a record without its finalizer")
	}
}

// TestZoneResyncErrors: a zone that cannot be listed marks its records and waits as the
// error says; a record whose write fails is retried under its own key, not the zone's.
func TestZoneResyncErrors(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{MaxRetries: 1})
	e.converged(3)
	e.reconcile(zoneKey)
	e.cf.RevokeToken(testToken)
	res, err := e.ctl.Reconcile(e.ctx, zoneKey)
	if err != nil || res.RequeueAfter != e.ctl.cfg.Resync {
		t.Fatalf("refused token: %v %+v", err, res)
	}
	if c := synced(e.get("r1")); c.Reason != v1.ReasonAPIError {
		t.Fatalf("r1 after a refused listing: %+v", c)
	}
	e.cf.AddToken(testToken)
	// A controller whose creates fail: the listing passes, the create of r1 is refused.
	cfg := e.config(Config{})
	cfg.Provider = failingCreates{e.client}
	ctl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var again []Key
	ctl.enqueue = func(k Key, _ time.Duration) { again = append(again, k) }
	e.cf.DeleteRecord(zone, e.records("r1." + zone)[0].ID)
	res, err = ctl.Reconcile(e.ctx, zoneKey)
	if err != nil || res.RequeueAfter != ctl.cfg.Resync || !slices.Equal(again, []Key{rec("r1")}) {
		t.Fatalf("a failed write in the zone pass: %v %+v, enqueued %v (want r1 alone)", err, res, again)
	}
	if c := synced(e.get("r1")); c.Reason != v1.ReasonAPIError {
		t.Fatalf("r1 after a failed create: %+v", c)
	}
}

type failingCreates struct{ Provider }

func (failingCreates) CreateRecord(context.Context, string, cloudflare.Record) (cloudflare.Record, error) {
	return cloudflare.Record{}, fmt.Errorf("create: %w", cloudflare.ErrUnavailable)
}

// TestRunResyncRestoresDeletedRecord runs the whole loop with a short Resync: a record deleted
// by hand comes back without any event in the store.
func TestRunResyncRestoresDeletedRecord(t *testing.T) {
	e := newEnv(t, Config{Resync: 100 * time.Millisecond}, cloudflare.Config{})
	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www." + zone, Type: v1.RecordA, Content: "192.0.2.10"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.ctl.Run(ctx, ctrl.Options{Logger: testLog}) }()
	defer func() { cancel(); <-done }()
	step := e.ctl.cfg.Resync / 4
	e.waitStepping("the record", step, func() bool { return len(e.records("www."+zone)) == 1 })
	e.cf.DeleteRecord(zone, e.records("www." + zone)[0].ID)
	e.waitStepping("the record restored by the resync", step, func() bool { return len(e.records("www."+zone)) == 1 })
}

// BenchmarkZoneResync prints the API calls one drift resync costs for 10, 100 and 1,000
// converged records in one zone (pages of 100, Cloudflare's default): zones × pages; and, for
// comparison, what the resync cost before (one list per record).
func BenchmarkZoneResync(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			e := newEnv(b, Config{}, cloudflare.Config{})
			e.converged(n)
			// Warm up: the zone id lookup and the first status writes are not part of a resync.
			if _, err := e.ctl.Reconcile(e.ctx, zoneKey); err != nil {
				b.Fatal(err)
			}
			// What a resync cost before the zone pass: every record reconciled on its own,
			// one list of its name each (measured, not assumed).
			e.cf.ResetCalls()
			for i := range n {
				if _, err := e.ctl.Reconcile(e.ctx, rec(fmt.Sprintf("r%d", i))); err != nil {
					b.Fatal(err)
				}
			}
			perRecord := len(e.cf.Calls())
			var calls int
			for b.Loop() {
				e.cf.ResetCalls()
				if _, err := e.ctl.Reconcile(e.ctx, zoneKey); err != nil {
					b.Fatal(err)
				}
				calls = len(e.cf.Calls())
			}
			b.ReportMetric(float64(calls), "calls/resync")
			b.ReportMetric(float64(perRecord), "calls/per-record-resync")
		})
	}
}

// TestTakeoverCostsOneListPerZone: a controller starting its term over 30 records converged by
// the previous leader lists the zone once (3 pages of 10), not each record; a record whose spec
// changes meanwhile still gets its own reconcile.
func TestTakeoverCostsOneListPerZone(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{PageSize: 10})
	e.converged(30)
	e.reconcile(zoneKey) // the previous leader's last pass: statuses written
	next, err := New(e.config(Config{Coalesce: 10 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	e.cf.ResetCalls()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); next.Run(ctx, ctrl.Options{Logger: testLog}) }()
	defer func() { cancel(); <-done }()
	step := next.cfg.Coalesce // far from Resync: no second zone pass while the test steps
	e.waitStepping("the first zone pass", step, func() bool { return value(t, next.syncs.WithLabelValues("zone", "synced")) >= 1 })
	// A spec change is queued behind whatever the start enqueued (one worker, FIFO): once it
	// is in Cloudflare, any per-record reconcile of the takeover would have run too.
	e.record("r5", v1.DNSRecordSpec{Zone: zone, Name: "r5." + zone, Type: v1.RecordA, Content: "192.0.2.55"})
	e.waitStepping("r5's new content", step, func() bool {
		rs := e.records("r5." + zone)
		return len(rs) == 1 && rs[0].Content == "192.0.2.55"
	})
	if got := e.listCalls(); got != 3+1 {
		t.Fatalf("takeover of 30 records and one spec change: %d list calls, want 3 (one zone listing) + 1", got)
	}
}

func TestRecordChangedLeavesSettledRecordsToTheZonePass(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	e.converged(1)
	e.record("fresh", v1.DNSRecordSpec{Zone: zone, Name: "fresh." + zone, Type: v1.RecordA, Content: "192.0.2.1"})
	added := func(name string) bool {
		_, ok := e.ctl.recordChanged(store.Event{Type: store.Added, Object: e.get(name)})
		return ok
	}
	if !added("r0") || !added("fresh") {
		t.Fatal("records without a status of their generation must be reconciled on their own")
	}
	e.reconcile(zoneKey)
	e.ctl.gens = map[string]genSeen{} // a new term
	if added("r0") {
		t.Fatal("a settled record was enqueued on its own at the start of a term")
	}
	if !added("fresh") {
		t.Fatal("a record the zone pass did not converge (no finalizer yet) was not enqueued")
	}
}

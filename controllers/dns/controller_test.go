package dns

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	fake "github.com/constellation-sh/constellation/test/fakes/cloudflare"
)

func TestLiteralRecord(t *testing.T) {
	e := newEnv(t, Config{Cluster: "c1"}, cloudflare.Config{})
	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www.example.com", Type: v1.RecordA, Content: "192.0.2.10"})
	e.reconcile(rec("www"))

	got := e.records("www.example.com")
	if len(got) != 1 || got[0].Content != "192.0.2.10" || got[0].Comment != "constellation:c1/www" || got[0].TTL != 60 {
		t.Fatalf("records: %+v", got)
	}
	d := e.get("www")
	if c := synced(d); c == nil || c.Status != v1.ConditionTrue || len(d.Status.Records) != 1 || d.Status.Records[0].ID != got[0].ID ||
		d.Status.LastSyncTime == nil || d.Status.ObservedGeneration != d.Metadata.Generation {
		t.Fatalf("status: %+v", d.Status)
	}
	if len(d.Metadata.Finalizers) != 1 || d.Metadata.Finalizers[0] != Finalizer {
		t.Fatalf("finalizers: %v", d.Metadata.Finalizers)
	}

	// Converged: a resync costs one list and writes nothing.
	e.cf.ResetCalls()
	e.reconcile(rec("www"))
	if n, w := len(e.cf.Calls()), e.cf.Writes(); n != 1 || w != 0 {
		t.Fatalf("resync of a converged record: %d calls, %d writes", n, w)
	}

	// Spec change: TXT beside, then the content.
	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www.example.com", Type: v1.RecordA, Content: "192.0.2.11", TTL: 300})
	e.reconcile(rec("www"))
	if got2 := e.records("www.example.com"); len(got2) != 1 || got2[0].Content != "192.0.2.11" || got2[0].ID != got[0].ID || got2[0].TTL != 300 {
		t.Fatalf("after spec change: %+v", got2)
	}
}

func TestLeaseTargetFollowsHolder(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	e.node("n1", "10.0.0.1", map[string]string{"role": "lb"}, true)
	e.node("n2", "10.0.0.2", map[string]string{"role": "lb"}, true)
	e.lease(v1.LeaseLB, "n1")
	e.record("lb", v1.DNSRecordSpec{Zone: zone, Name: "lb.example.com", Type: v1.RecordA, Target: &v1.DNSTarget{Lease: v1.LeaseLB}})
	e.reconcile(rec("lb"))
	first := e.records("lb.example.com")
	if len(first) != 1 || first[0].Content != "10.0.0.1" {
		t.Fatalf("before: %+v", first)
	}

	e.lease(v1.LeaseLB, "n2")
	e.cf.ResetCalls()
	e.reconcile(rec("lb"))
	after := e.records("lb.example.com")
	if len(after) != 1 || after[0].Content != "10.0.0.2" || after[0].ID != first[0].ID {
		t.Fatalf("after: %+v", after)
	}
	if c := e.cf.CallCounts(); c["PATCH "+fake.PatternRecord] != 1 || len(e.cf.Calls()) != 2 {
		t.Fatalf("a holder change should cost one list and one PATCH: %v", c)
	}

	// The lease released (no holder): the record stays, reported.
	e.lease(v1.LeaseLB, "")
	e.reconcile(rec("lb"))
	if got := e.records("lb.example.com"); len(got) != 1 || got[0].Content != "10.0.0.2" {
		t.Fatalf("no holder: %+v", got)
	}
	if c := synced(e.get("lb")); c.Status != v1.ConditionFalse || c.Reason != v1.ReasonNoTarget {
		t.Fatalf("no holder condition: %+v", c)
	}
}

func TestNodeSelectorTargetAndGrace(t *testing.T) {
	e := newEnv(t, Config{NodeGrace: 30 * time.Second}, cloudflare.Config{})
	web := map[string]string{"tier": "web"}
	e.node("n1", "10.0.0.1", web, true)
	e.node("n2", "10.0.0.2", web, false)
	e.node("n3", "10.0.0.3", map[string]string{"tier": "db"}, true)
	e.clock.Advance(time.Minute) // n2 not Ready for longer than the grace period
	e.record("web", v1.DNSRecordSpec{Zone: zone, Name: "web.example.com", Type: v1.RecordA, Target: &v1.DNSTarget{NodeSelector: web}})
	e.reconcile(rec("web"))
	if got := contents(e.records("web.example.com")); strings.Join(got, ",") != "A 10.0.0.1" {
		t.Fatalf("one Ready web node: %v", got)
	}
	e.node("n2", "10.0.0.2", web, true)
	e.reconcile(rec("web"))
	if got := contents(e.records("web.example.com")); strings.Join(got, ",") != "A 10.0.0.1,A 10.0.0.2" {
		t.Fatalf("two Ready web nodes: %v", got)
	}
	if d := e.get("web"); len(d.Status.Records) != 2 {
		t.Fatalf("status records: %+v", d.Status.Records)
	}

	// n1 flaps: not Ready for less than the grace period costs no write.
	e.cf.ResetCalls()
	e.node("n1", "10.0.0.1", web, false)
	res := e.reconcile(rec("web"))
	if e.cf.Writes() != 0 || res.RequeueAfter != 30*time.Second {
		t.Fatalf("within grace: %d writes, requeue %s", e.cf.Writes(), res.RequeueAfter)
	}
	e.node("n1", "10.0.0.1", web, true)
	e.reconcile(rec("web"))
	if e.cf.Writes() != 0 {
		t.Fatal("a flap within the grace period wrote")
	}
	// Down for longer than the grace period: removed.
	e.node("n1", "10.0.0.1", web, false)
	e.clock.Advance(31 * time.Second)
	e.reconcile(rec("web"))
	if got := contents(e.records("web.example.com")); strings.Join(got, ",") != "A 10.0.0.2" {
		t.Fatalf("after grace: %v", got)
	}
}

func TestDriftRestored(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www.example.com", Type: v1.RecordA, Content: "192.0.2.10", Proxied: true})
	e.reconcile(rec("www"))
	r := e.records("www.example.com")[0]

	// Edited by hand (content and proxied), comment kept: restored in place.
	r.Content, r.Proxied, r.TTL = "203.0.113.66", false, 3600
	if _, err := e.cf.PutRecord(zone, r); err != nil {
		t.Fatal(err)
	}
	e.reconcile(rec("www"))
	got := e.records("www.example.com")
	if len(got) != 1 || got[0].Content != "192.0.2.10" || !got[0].Proxied || got[0].ID != r.ID {
		t.Fatalf("after an edit: %+v", got)
	}
	// Deleted by hand: recreated.
	e.cf.DeleteRecord(zone, r.ID)
	e.reconcile(rec("www"))
	got = e.records("www.example.com")
	if len(got) != 1 || got[0].Content != "192.0.2.10" {
		t.Fatalf("after a delete: %+v", got)
	}
	if d := e.get("www"); d.Status.Records[0].ID != got[0].ID {
		t.Fatalf("status keeps the old id: %+v", d.Status.Records)
	}
}

func TestForeignRecordLeftAlone(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	foreign, _ := e.cf.PutRecord(zone, fake.Record{Type: "A", Name: "app", Content: "203.0.113.9", TTL: 300, Comment: "managed by hand"})
	spf, _ := e.cf.PutRecord(zone, fake.Record{Type: "TXT", Name: "app", Content: "v=spf1 -all"})
	e.record("app", v1.DNSRecordSpec{Zone: zone, Name: "app.example.com", Type: v1.RecordA, Content: "192.0.2.1"})
	e.record("app-txt", v1.DNSRecordSpec{Zone: zone, Name: "app.example.com", Type: v1.RecordTXT, Content: "owner=constellation"})
	e.reconcile(rec("app"))
	e.reconcile(rec("app-txt"))

	got := e.records("app.example.com")
	if strings.Join(contents(got), ",") != "A 203.0.113.9,TXT owner=constellation,TXT v=spf1 -all" {
		t.Fatalf("records: %v", contents(got))
	}
	for _, g := range got {
		if g.ID == foreign.ID && (g.Content != foreign.Content || g.Comment != foreign.Comment || !g.ModifiedOn.Equal(foreign.ModifiedOn)) {
			t.Fatalf("foreign record touched: %+v", g)
		}
		if g.ID == spf.ID && !g.ModifiedOn.Equal(spf.ModifiedOn) {
			t.Fatalf("foreign TXT touched: %+v", g)
		}
	}
	c := synced(e.get("app"))
	if c.Status != v1.ConditionFalse || c.Reason != v1.ReasonForeignRecord || !strings.Contains(c.Message, foreign.ID) {
		t.Fatalf("condition: %+v", c)
	}
	if c := synced(e.get("app-txt")); c.Status != v1.ConditionTrue {
		t.Fatalf("TXT beside a foreign TXT: %+v", c)
	}
	// Reconciling again does not fight: no writes.
	e.cf.ResetCalls()
	e.reconcile(rec("app"))
	if e.cf.Writes() != 0 {
		t.Fatal("wrote while a foreign record is in the way")
	}
	// The operator removes theirs: ours appears.
	e.cf.DeleteRecord(zone, foreign.ID)
	e.reconcile(rec("app"))
	if c := synced(e.get("app")); c.Status != v1.ConditionTrue {
		t.Fatalf("after the foreign record left: %+v", c)
	}
}

func TestDeletionRemovesRecords(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	web := map[string]string{"tier": "web"}
	e.node("n1", "10.0.0.1", web, true)
	e.node("n2", "10.0.0.2", web, true)
	e.cf.PutRecord(zone, fake.Record{Type: "A", Name: "web", Content: "10.0.0.1", Comment: "constellation:other/web"}) //nolint:errcheck
	e.record("web", v1.DNSRecordSpec{Zone: zone, Name: "web.example.com", Type: v1.RecordAAAA, Target: &v1.DNSTarget{NodeSelector: web}})
	e.record("web4", v1.DNSRecordSpec{Zone: zone, Name: "web4.example.com", Type: v1.RecordA, Target: &v1.DNSTarget{NodeSelector: web}})
	e.reconcile(rec("web"))
	e.reconcile(rec("web4"))
	if n := len(e.records("web4.example.com")); n != 2 {
		t.Fatalf("%d records", n)
	}
	if _, err := e.st.Delete(e.ctx, v1.KindDNSRecord, "web4", ""); err != nil {
		t.Fatal(err)
	}
	e.reconcile(rec("web4"))
	if n := len(e.records("web4.example.com")); n != 0 {
		t.Fatalf("%d records left after delete", n)
	}
	if _, err := e.st.Get(e.ctx, v1.KindDNSRecord, "web4"); err == nil {
		t.Fatal("object still there after its records went")
	}
	if n := len(e.records("web.example.com")); n != 1 {
		t.Fatalf("another cluster's record was touched: %d left", n)
	}
}

func TestNodeRecords(t *testing.T) {
	e := newEnv(t, Config{NodeRecordsZone: zone, NodeGrace: 10 * time.Second}, cloudflare.Config{})
	e.node("n1", "10.0.0.1", nil, true)
	e.node("n2", "10.0.0.2:7480", nil, true)
	e.node("n3", "10.0.0.3", nil, true)
	e.cf.PutRecord(zone, fake.Record{Type: "A", Name: "n3", Content: "198.51.100.3"}) //nolint:errcheck
	e.reconcile(nodeRecordsKey)
	all := map[string]string{}
	for _, r := range e.cf.Records(zone) {
		all[r.Name] = r.Content
	}
	if all["n1.example.com"] != "10.0.0.1" || all["n2.example.com"] != "10.0.0.2" || all["n3.example.com"] != "198.51.100.3" {
		t.Fatalf("node records: %v", all)
	}
	e.node("n2", "10.0.0.2", nil, false)
	e.clock.Advance(11 * time.Second)
	e.reconcile(nodeRecordsKey)
	if n := len(e.records("n2.example.com")); n != 0 {
		t.Fatal("record of a node down past the grace period kept")
	}
	if n := len(e.records("n3.example.com")); n != 1 {
		t.Fatal("foreign record touched")
	}
}

// TestRateLimitStorm: Cloudflare answers 429 to 40 requests in a row while six records
// converge. Nothing crashes, every record converges once the storm ends, no request goes out
// before a Retry-After has passed, and the requests stay within the budget.
func TestRateLimitStorm(t *testing.T) {
	ccfg := cloudflare.Config{Requests: 60, Per: time.Minute, Burst: 5, MaxRetries: 2}
	e := newEnv(t, Config{}, ccfg)
	for i, n := range []string{"a", "b", "c", "d", "e", "f"} {
		e.record(n, v1.DNSRecordSpec{Zone: zone, Name: n + ".example.com", Type: v1.RecordA, Content: "192.0.2." + string(rune('1'+i))})
	}
	_, _ = e.client.ZoneID(e.ctx, zone)
	e.cf.ResetCalls()
	e.cf.FailNext(40, http.StatusTooManyRequests, 3*time.Second)
	start := e.clock.Now()
	rateLimited := 0
	for round := 0; round < 40; round++ {
		done := 0
		for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
			res, err := e.ctl.Reconcile(e.ctx, rec(n))
			if err != nil {
				t.Fatalf("reconcile %s: %v", n, err)
			}
			if c := synced(e.get(n)); c != nil && c.Reason == v1.ReasonRateLimited {
				rateLimited++
			}
			if c := synced(e.get(n)); c != nil && c.Status == v1.ConditionTrue {
				done++
			} else if res.RequeueAfter > 0 && res.RequeueAfter < e.ctl.cfg.Resync {
				e.clock.Advance(res.RequeueAfter)
			}
		}
		if done == 6 {
			break
		}
	}
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		if got := e.records(n + ".example.com"); len(got) != 1 {
			t.Fatalf("%s not converged after the storm: %+v", n, got)
		}
	}
	calls := e.cf.Calls()
	var last429 time.Time
	for _, c := range calls {
		if !last429.IsZero() && c.Time.Sub(last429) < 3*time.Second {
			t.Fatalf("a request %s after a 429 asking for 3s", c.Time.Sub(last429))
		}
		if c.Status == http.StatusTooManyRequests {
			last429 = c.Time
		} else {
			last429 = time.Time{}
		}
	}
	// Budget: the busiest minute saw at most burst + 60 requests.
	most := 0
	for i := range calls {
		j := i
		for j < len(calls) && calls[j].Time.Sub(calls[i].Time) < time.Minute {
			j++
		}
		most = max(most, j-i)
	}
	t.Logf("429 storm: %d calls (%d answered 429), %d reconciles reported RateLimited, converged after %s simulated, busiest minute %d calls",
		len(calls), 40, rateLimited, e.clock.Now().Sub(start), most)
	if most > 65 {
		t.Fatalf("%d calls in one minute, budget allows 65", most)
	}
	if rateLimited == 0 {
		t.Fatal("no reconcile reported RateLimited")
	}
}

// TestLeaderGate: two controllers on one store and one Cloudflare account, only one allowed to
// act. The other writes nothing, neither to Cloudflare nor to status; when leadership moves,
// the new leader takes over without fighting the records the old one made.
func TestLeaderGate(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	gA, gB := &gate{}, &gate{}
	gA.on.Store(true)
	pA := &countingProvider{Provider: e.client}
	pB := &countingProvider{Provider: e.client}
	cfgA, cfgB := e.config(Config{IsLeader: gA.IsLeader}), e.config(Config{IsLeader: gB.IsLeader})
	cfgA.Provider, cfgB.Provider = pA, pB
	a, _ := New(cfgA)
	b, _ := New(cfgB)
	for _, n := range []string{"x", "y", "z"} {
		e.record(n, v1.DNSRecordSpec{Zone: zone, Name: n + ".example.com", Type: v1.RecordA, Content: "192.0.2.1"})
	}
	var wg sync.WaitGroup
	for _, c := range []*Controller{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				for _, n := range []string{"x", "y", "z"} {
					if _, err := c.Reconcile(e.ctx, rec(n)); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if pB.writes.Load() != 0 || pA.writes.Load() != 3 {
		t.Fatalf("writes: leader %d (want 3), follower %d (want 0)", pA.writes.Load(), pB.writes.Load())
	}
	// Leadership moves to b mid-way through a's reconcile: a's next write is refused.
	gA.on.Store(false)
	gB.on.Store(true)
	e.record("x", v1.DNSRecordSpec{Zone: zone, Name: "x.example.com", Type: v1.RecordA, Content: "192.0.2.99"})
	if _, err := a.Reconcile(e.ctx, rec("x")); err != nil {
		t.Fatal(err)
	}
	if pA.writes.Load() != 3 {
		t.Fatal("a wrote after losing the lease")
	}
	if _, err := b.Reconcile(e.ctx, rec("x")); err != nil {
		t.Fatal(err)
	}
	if got := e.records("x.example.com"); len(got) != 1 || got[0].Content != "192.0.2.99" || pB.writes.Load() != 1 {
		t.Fatalf("after the move: %+v, b wrote %d", got, pB.writes.Load())
	}
}

// TestRunCoalescesFlaps runs the whole loop: a node flapping twenty times within the grace
// period costs no write and at most a handful of list calls.
func TestRunCoalescesFlaps(t *testing.T) {
	e := newEnv(t, Config{Coalesce: 50 * time.Millisecond, NodeGrace: time.Hour}, cloudflare.Config{})
	web := map[string]string{"tier": "web"}
	e.node("n1", "10.0.0.1", web, true)
	e.node("n2", "10.0.0.2", web, true)
	e.record("web", v1.DNSRecordSpec{Zone: zone, Name: "web.example.com", Type: v1.RecordA, Target: &v1.DNSTarget{NodeSelector: web}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.ctl.Run(ctx, ctrl.Options{Logger: testLog}) }()
	defer func() { cancel(); <-done }()
	e.waitStepping("two records", e.ctl.cfg.Coalesce, func() bool { return len(e.records("web.example.com")) == 2 })
	e.flush(e.ctl) // what the start queued (the zone pass, the record) is done
	e.cf.ResetCalls()
	for i := range 20 {
		e.node("n2", "10.0.0.2", web, i%2 == 1)
		// 5ms between flaps: the coalesced targets pass falls due every tenth flap or so.
		e.clock.Advance(5 * time.Millisecond)
	}
	e.flush(e.ctl) // a targets pass that sees the last flap...
	e.flush(e.ctl) // ...and whatever it queued are done
	flapCalls := len(e.cf.Calls())
	if w := e.cf.Writes(); w != 0 || flapCalls > 2 {
		t.Fatalf("20 flaps cost %d calls, %d writes", flapCalls, w)
	}
	// A real change goes through, woken by the node watch after Coalesce: a third node.
	e.node("n3", "10.0.0.3", web, true)
	e.waitStepping("three records", e.ctl.cfg.Coalesce, func() bool { return len(e.records("web.example.com")) == 3 })
	t.Logf("20 flaps within the grace period: %d API calls; then a new node: %d calls in all", flapCalls, len(e.cf.Calls()))
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTokenNeverInStatus: a refused token shows as APIError, without the token.
func TestTokenNeverInStatus(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www.example.com", Type: v1.RecordA, Content: "192.0.2.10"})
	e.cf.RevokeToken(testToken)
	res, err := e.ctl.Reconcile(e.ctx, rec("www"))
	if err != nil || res.RequeueAfter != e.ctl.cfg.Resync {
		t.Fatalf("refused token: %v %+v (want a resync-paced retry, not a hot loop)", err, res)
	}
	c := synced(e.get("www"))
	if c == nil || c.Reason != v1.ReasonAPIError || !strings.Contains(c.Message, "9109") {
		t.Fatalf("condition: %+v", c)
	}
	b, _ := v1.Encode(e.get("www"))
	if strings.Contains(string(b), testToken) {
		t.Fatal("the token is in the object")
	}
}

// TestTargetsPassEnqueuesOnlyChanges: the targets pass makes no API call and enqueues only the
// records whose wanted contents changed.
func TestTargetsPassEnqueuesOnlyChanges(t *testing.T) {
	e := newEnv(t, Config{NodeRecordsZone: zone}, cloudflare.Config{})
	e.node("n1", "10.0.0.1", map[string]string{"role": "lb"}, true)
	e.node("n2", "10.0.0.2", map[string]string{"role": "lb"}, true)
	e.lease(v1.LeaseLB, "n1")
	e.record("lb", v1.DNSRecordSpec{Zone: zone, Name: "lb.example.com", Type: v1.RecordA, Target: &v1.DNSTarget{Lease: v1.LeaseLB}})
	e.record("lit", v1.DNSRecordSpec{Zone: zone, Name: "lit.example.com", Type: v1.RecordA, Content: "192.0.2.1"})
	var got []Key
	e.ctl.enqueue = func(k Key, _ time.Duration) { got = append(got, k) }
	e.reconcile(rec("lb"))
	e.reconcile(rec("lit"))
	e.reconcile(nodeRecordsKey)
	e.cf.ResetCalls()
	e.lease(v1.LeaseLB, "n1") // a renewal: same holder
	if _, err := e.ctl.Reconcile(e.ctx, targetsKey); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 || len(e.cf.Calls()) != 0 {
		t.Fatalf("renewal: enqueued %v, %d calls", got, len(e.cf.Calls()))
	}
	e.lease(v1.LeaseLB, "n2")
	e.node("n3", "10.0.0.3", nil, true)
	if _, err := e.ctl.Reconcile(e.ctx, targetsKey); err != nil {
		t.Fatal(err)
	}
	if len(e.cf.Calls()) != 0 || len(got) != 2 || got[0] != rec("lb") || got[1] != nodeRecordsKey {
		t.Fatalf("holder change and a new node: enqueued %v, %d calls", got, len(e.cf.Calls()))
	}
}

func TestZoneNotFoundAndConfig(t *testing.T) {
	e := newEnv(t, Config{}, cloudflare.Config{})
	e.record("x", v1.DNSRecordSpec{Zone: "nope.org", Name: "x.nope.org", Type: v1.RecordA, Content: "192.0.2.1"})
	res := e.reconcile(rec("x"))
	if c := synced(e.get("x")); c == nil || c.Reason != v1.ReasonZoneNotFound || res.RequeueAfter != e.ctl.cfg.Resync {
		t.Fatalf("missing zone: %+v %+v", c, res)
	}
	// Deleting a record whose zone does not exist does not hang on the finalizer.
	if _, err := e.st.Delete(e.ctx, v1.KindDNSRecord, "x", ""); err != nil {
		t.Fatal(err)
	}
	e.reconcile(rec("x"))
	if _, err := e.st.Get(e.ctx, v1.KindDNSRecord, "x"); err == nil {
		t.Fatal("record kept by its finalizer")
	}
	for _, cfg := range []Config{{Cluster: "a-cluster-name-too-long"}, {Cluster: "Bad_Name"}, {NodeRecordsZone: "nodot"}, {NodeRecordsTTL: 5}} {
		if _, err := New(Config{Store: e.st, Provider: e.client, Cluster: cfg.Cluster, NodeRecordsZone: cfg.NodeRecordsZone, NodeRecordsTTL: cfg.NodeRecordsTTL}); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := New(Config{Provider: e.client}); err == nil {
		t.Error("a config without Store accepted")
	}
	if _, err := New(Config{Store: e.st}); err == nil {
		t.Error("a config without Provider accepted")
	}
}

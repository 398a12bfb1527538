package dns

import (
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/events"
	"github.com/constellation-sh/constellation/pkg/events/eventstest"
)

// The DNS controller against the fake Cloudflare reports what it wrote and what failed.
func TestDNSRecordsEvents(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	e := newEnv(t, Config{Cluster: "c1"}, cloudflare.Config{})
	recorder, err := events.New(events.Config{Store: e.st, Node: "n1", Clock: clk, Logger: testLog})
	if err != nil {
		t.Fatal(err)
	}
	e.ctl.cfg.Events = recorder

	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www.example.com", Type: v1.RecordA, Content: "192.0.2.10"})
	e.reconcile(rec("www"))
	e.reconcile(rec("www")) // converged: nothing written, nothing reported
	recorder.Flush(e.ctx)
	expectDNSEvents(t, e, "DNSRecord/www Normal DNSRecordWritten 1 created A www.example.com 192.0.2.10")

	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www.example.com", Type: v1.RecordA, Content: "192.0.2.11"})
	e.cf.RevokeToken(testToken)
	e.ctl.Reconcile(e.ctx, rec("www")) // fails: the token is refused
	clk.Step(time.Second)
	recorder.Flush(e.ctx)
	got := dnsEventLines(t, e)
	if len(got) != 2 || !strings.HasPrefix(got[1], "DNSRecord/www Warning DNSRecordFailed 1 "+string(v1.ReasonAPIError)+": ") {
		t.Fatalf("events:\n%s", strings.Join(got, "\n"))
	}
}

func TestPlanSummary(t *testing.T) {
	p := Plan{
		Create: []cloudflare.Record{{Type: "A", Name: "a.example.com", Content: "192.0.2.1"}},
		Update: []cloudflare.Record{{Type: "A", Name: "b.example.com", Content: "192.0.2.2"}},
		Delete: []cloudflare.Record{{Type: "TXT", Name: "c.example.com", Content: "x"}},
	}
	want := "deleted TXT c.example.com x; updated A b.example.com 192.0.2.2; created A a.example.com 192.0.2.1"
	if got := planSummary(p); got != want {
		t.Fatalf("got %q", got)
	}
}

func dnsEventLines(t *testing.T, e *env) []string {
	t.Helper()
	www := events.Ref(v1.KindDNSRecord, "www")
	return eventstest.Lines(t, e.st, eventstest.From{Component: "dns", Involved: &www})
}

func expectDNSEvents(t *testing.T, e *env, want ...string) {
	t.Helper()
	www := events.Ref(v1.KindDNSRecord, "www")
	eventstest.Expect(t, e.st, eventstest.From{Component: "dns", Involved: &www}, want...)
}

package dns

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/events"
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
	expectDNSEvents(t, e, "Normal DNSRecordWritten 1 created A www.example.com 192.0.2.10")

	e.record("www", v1.DNSRecordSpec{Zone: zone, Name: "www.example.com", Type: v1.RecordA, Content: "192.0.2.11"})
	e.cf.RevokeToken(testToken)
	e.ctl.Reconcile(e.ctx, rec("www")) // fails: the token is refused
	clk.Step(time.Second)
	recorder.Flush(e.ctx)
	got := dnsEventLines(t, e)
	if len(got) != 2 || !strings.HasPrefix(got[1], "Warning DNSRecordFailed 1 "+v1.ReasonAPIError+": ") {
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
	objs, _, err := e.st.List(e.ctx, v1.KindEvent, v1.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		ev := o.(*v1.Event)
		if ev.Spec.InvolvedObject != events.Ref(v1.KindDNSRecord, "www") || ev.Spec.Component != "dns" {
			t.Errorf("event %+v", ev.Spec)
		}
		got = append(got, fmt.Sprintf("%s %s %d %s", ev.Spec.Type, ev.Spec.Reason, ev.Spec.Count, ev.Spec.Message))
	}
	sort.Strings(got)
	return got
}

func expectDNSEvents(t *testing.T, e *env, want ...string) {
	t.Helper()
	if got := dnsEventLines(t, e); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

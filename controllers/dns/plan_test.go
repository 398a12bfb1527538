package dns

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/observed"
)

const own = "constellation:c/lb"

func r(id, typ, name, content string, comment ...string) cloudflare.Record {
	c := own
	if len(comment) > 0 {
		c = comment[0]
	}
	return cloudflare.Record{ID: id, Type: typ, Name: name, Content: content, TTL: 60, Comment: c}
}

func show(rs []cloudflare.Record) string {
	parts := make([]string, len(rs))
	for i, x := range rs {
		parts[i] = fmt.Sprintf("%s:%s %s", x.ID, x.Type, x.Content)
	}
	return strings.Join(parts, ",")
}

func TestCompute(t *testing.T) {
	const n = "lb.example.com"
	for _, tc := range []struct {
		name                                        string
		want, have                                  []cloudflare.Record
		create, update, del, keep, foreign, blocked string
	}{
		{name: "nothing there: create",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1")}, create: ":A 10.0.0.1"},
		{name: "already right: keep",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1")}, keep: "1:A 10.0.0.1"},
		{name: "content changed: update in place",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.2")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1")}, update: "1:A 10.0.0.2"},
		{name: "ttl changed: update",
			want: []cloudflare.Record{{Type: "A", Name: n, Content: "10.0.0.1", TTL: 300, Comment: own}}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1")}, update: "1:A 10.0.0.1"},
		{name: "proxied records have ttl 1: no update for ttl",
			want: []cloudflare.Record{{Type: "A", Name: n, Content: "10.0.0.1", TTL: 300, Proxied: true, Comment: own}},
			have: []cloudflare.Record{{ID: "1", Type: "A", Name: n, Content: "10.0.0.1", TTL: 1, Proxied: true, Comment: own}}, keep: "1:A 10.0.0.1"},
		{name: "one of two gone: delete the other",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1"), r("2", "A", n, "10.0.0.2")}, keep: "1:A 10.0.0.1", del: "2:A 10.0.0.2"},
		{name: "nothing wanted: delete ours only",
			have: []cloudflare.Record{r("1", "A", n, "10.0.0.1"), r("9", "A", n, "10.9.9.9", "")}, del: "1:A 10.0.0.1"},
		{name: "foreign A at the name: not created, reported",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1")}, have: []cloudflare.Record{r("9", "A", n, "10.9.9.9", "operator's")},
			foreign: "9:A 10.9.9.9", blocked: ":A 10.0.0.1"},
		{name: "foreign A beside ours: ours still follows, foreign reported",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.2")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1"), r("9", "A", n, "10.9.9.9", "")},
			update: "1:A 10.0.0.2", foreign: "9:A 10.9.9.9"},
		{name: "foreign identical to the new content: ours deleted, not updated",
			want: []cloudflare.Record{r("", "A", n, "10.9.9.9")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1"), r("9", "A", n, "10.9.9.9", "")},
			del: "1:A 10.0.0.1", foreign: "9:A 10.9.9.9", blocked: ":A 10.9.9.9"},
		{name: "foreign CNAME blocks A",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1")}, have: []cloudflare.Record{r("9", "CNAME", n, "x.example.net", "")},
			foreign: "9:CNAME x.example.net", blocked: ":A 10.0.0.1"},
		{name: "foreign A blocks CNAME",
			want: []cloudflare.Record{r("", "CNAME", n, "x.example.net")}, have: []cloudflare.Record{r("9", "A", n, "10.0.0.1", "")},
			foreign: "9:A 10.0.0.1", blocked: ":CNAME x.example.net"},
		{name: "foreign TXT with other content does not block TXT",
			want: []cloudflare.Record{r("", "TXT", n, "ours")}, have: []cloudflare.Record{r("9", "TXT", n, "v=spf1 -all", "")}, create: ":TXT ours"},
		{name: "foreign AAAA does not block A",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1")}, have: []cloudflare.Record{r("9", "AAAA", n, "2001:db8::1", "")}, create: ":A 10.0.0.1"},
		{name: "type change: delete old, create new",
			want: []cloudflare.Record{r("", "CNAME", n, "x.example.net")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1")},
			del: "1:A 10.0.0.1", create: ":CNAME x.example.net"},
		{name: "record of another cluster is foreign",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1")}, have: []cloudflare.Record{r("5", "A", n, "10.0.0.1", "constellation:other/lb")},
			foreign: "5:A 10.0.0.1", blocked: ":A 10.0.0.1"},
		{name: "name changed: old name deleted, new created",
			want: []cloudflare.Record{r("", "A", "new.example.com", "10.0.0.1")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1")},
			del: "1:A 10.0.0.1", create: ":A 10.0.0.1"},
		{name: "normalized: case and dots do not cause updates",
			want: []cloudflare.Record{r("", "CNAME", "LB.Example.com.", "X.Example.NET.")}, have: []cloudflare.Record{r("1", "CNAME", n, "x.example.net")}, keep: "1:CNAME x.example.net"},
		{name: "duplicates wanted once",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.1"), r("", "A", n, "10.0.0.1")}, create: ":A 10.0.0.1"},
		{name: "two owned, two new contents: two updates",
			want: []cloudflare.Record{r("", "A", n, "10.0.0.3"), r("", "A", n, "10.0.0.4")}, have: []cloudflare.Record{r("1", "A", n, "10.0.0.1"), r("2", "A", n, "10.0.0.2")},
			update: "1:A 10.0.0.3,2:A 10.0.0.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(tc.want, tc.have, own)
			for _, c := range []struct {
				what, got, want string
			}{{"create", show(p.Create), tc.create}, {"update", show(p.Update), tc.update}, {"delete", show(p.Delete), tc.del},
				{"keep", show(p.Keep), tc.keep}, {"foreign", show(p.Foreign), tc.foreign}, {"blocked", show(p.Blocked), tc.blocked}} {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
			// Never touch what is not ours.
			for _, x := range append(append([]cloudflare.Record(nil), p.Update...), p.Delete...) {
				for _, h := range tc.have {
					if h.ID == x.ID && h.Comment != own {
						t.Fatalf("plan touches foreign record %s", h.ID)
					}
				}
			}
		})
	}
}

func TestPlanNodeRecords(t *testing.T) {
	pre := NodeOwner("c", "")
	rec := func(id, node, content string, comment ...string) cloudflare.Record {
		c := pre + node
		if len(comment) > 0 {
			c = comment[0]
		}
		return r(id, "A", node+".example.com", content, c)
	}
	set := func(nodes ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range nodes {
			m[pre+n] = true
		}
		return m
	}
	unrelated := r("9", "A", "www.example.com", "10.0.0.9", "other")
	for _, tc := range []struct {
		name string
		want NodeRecordsWant
		have []cloudflare.Record
		// keep|update|delete|create|foreign, then held by the brake
		plan, held string
	}{
		{name: "right, drifted, foreign in the way, unrelated",
			want: NodeRecordsWant{Want: Want{Records: []cloudflare.Record{rec("", "n1", "10.0.0.1"), rec("", "n2", "10.0.0.2"), rec("", "n4", "10.0.0.4")}},
				Known: set("n1", "n2", "n4")},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.9.9"), rec("4", "n4", "10.7.7.7", "mine!"), unrelated},
			plan: "1:A 10.0.0.1|2:A 10.0.0.2|||4:A 10.7.7.7"},
		{name: "a lost node's record goes",
			want: NodeRecordsWant{Want: Want{Records: []cloudflare.Record{rec("", "n1", "10.0.0.1"), rec("", "n2", "10.0.0.2")}},
				Known: set("n1", "n2", "n3"), Lost: 1},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.0.2"), rec("3", "n3", "10.0.0.3")},
			plan: "1:A 10.0.0.1,2:A 10.0.0.2||3:A 10.0.0.3||"},
		{name: "a deleted node's record goes (no Node object, not in gossip)",
			want: NodeRecordsWant{Want: Want{Records: []cloudflare.Record{rec("", "n1", "10.0.0.1"), rec("", "n2", "10.0.0.2")}},
				Known: set("n1", "n2")},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.0.2"), rec("3", "n3", "10.0.0.3")},
			plan: "1:A 10.0.0.1,2:A 10.0.0.2||3:A 10.0.0.3||"},
		{name: "partial view: nodes not seen keep their records untouched, even drifted ones",
			want: NodeRecordsWant{Want: Want{Records: []cloudflare.Record{rec("", "n1", "10.0.0.1")}},
				Known: set("n1", "n2", "n3"), Keep: set("n2", "n3")},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.0.2"), rec("3", "n3", "10.0.8.8")},
			plan: "1:A 10.0.0.1,2:A 10.0.0.2,3:A 10.0.8.8||||"},
		{name: "partial view: a node not seen without a record gets none",
			want: NodeRecordsWant{Want: Want{Records: []cloudflare.Record{rec("", "n1", "10.0.0.1")}},
				Known: set("n1", "n2"), Keep: set("n2")},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1")},
			plan: "1:A 10.0.0.1||||"},
		{name: "empty view and nothing wanted, all unknown: nothing deleted",
			want: NodeRecordsWant{Known: set("n1", "n2", "n3"), Keep: set("n1", "n2", "n3")},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.0.2"), rec("3", "n3", "10.0.0.3")},
			plan: "1:A 10.0.0.1,2:A 10.0.0.2,3:A 10.0.0.3||||"},
		{name: "brake: two of three lost at once, nothing deleted, a new address still written",
			want: NodeRecordsWant{Want: Want{Records: []cloudflare.Record{rec("", "n1", "10.0.1.1")}},
				Known: set("n1", "n2", "n3"), Lost: 2},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.0.2"), rec("3", "n3", "10.0.0.3")},
			plan: "2:A 10.0.0.2,3:A 10.0.0.3|1:A 10.0.1.1|||", held: "2:A 10.0.0.2,3:A 10.0.0.3"},
		{name: "brake: the store shows no Node objects and gossip nothing: nothing deleted",
			want: NodeRecordsWant{Known: set()},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.0.2")},
			plan: "1:A 10.0.0.1,2:A 10.0.0.2||||", held: "1:A 10.0.0.1,2:A 10.0.0.2"},
		{name: "no brake at exactly half",
			want: NodeRecordsWant{Want: Want{Records: []cloudflare.Record{rec("", "n1", "10.0.0.1")}},
				Known: set("n1", "n2"), Lost: 1},
			have: []cloudflare.Record{rec("1", "n1", "10.0.0.1"), rec("2", "n2", "10.0.0.2")},
			plan: "1:A 10.0.0.1||2:A 10.0.0.2||"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, b := PlanNodeRecords(tc.want, tc.have, pre)
			if got := show(p.Keep) + "|" + show(p.Update) + "|" + show(p.Delete) + "|" + show(p.Create) + "|" + show(p.Foreign); got != tc.plan {
				t.Errorf("plan: %s, want %s", got, tc.plan)
			}
			if got := show(b.Held); got != tc.held || b.On() != (tc.held != "") {
				t.Errorf("held by the brake: %q (on %v), want %q", got, b.On(), tc.held)
			}
			for _, x := range append(append([]cloudflare.Record(nil), p.Update...), p.Delete...) {
				if !strings.HasPrefix(x.Comment, pre) {
					t.Errorf("plan touches foreign record %s", x.ID)
				}
			}
		})
	}
}

func TestKeepOwned(t *testing.T) {
	const n = "web.example.com"
	want := []cloudflare.Record{r("", "A", n, "10.0.0.1"), r("", "A", n, "10.0.0.4")}
	have := []cloudflare.Record{r("1", "A", n, "10.0.0.1"), r("2", "A", n, "10.0.0.2"), r("3", "TXT", n, "v=spf1 -all", "foreign"),
		r("5", "AAAA", n, "2001:db8::5"), r("6", "A", "old.example.com", "10.0.0.6")}
	p := Compute(KeepOwned(want, have, own), have, own)
	// Nothing of ours at this name and type goes; the new address is added; a record of ours
	// under another name or type (a spec change, not a node loss) still goes.
	if got := show(p.Keep) + "|" + show(p.Create) + "|" + show(p.Update) + "|" + show(p.Delete); got != "1:A 10.0.0.1,2:A 10.0.0.2|:A 10.0.0.4||6:A 10.0.0.6,5:AAAA 2001:db8::5" {
		t.Fatalf("plan: %s", got)
	}
	if len(KeepOwned(nil, have, own)) != 0 {
		t.Fatal("nothing wanted (NoTarget) must stay nothing")
	}
}

func TestNodeStatesAndWanted(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	node := func(name, addr string, ready bool, since time.Time, labels map[string]string) *v1.Node {
		n := &v1.Node{}
		n.Metadata.Name = name
		n.Spec.Labels = labels
		n.Status.Addresses.Advertise = addr
		st := v1.ConditionFalse
		if ready {
			st = v1.ConditionTrue
		}
		n.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: st, LastTransitionTime: since}}
		return n
	}
	lb := map[string]string{"role": "lb"}
	cl := Cluster{
		Nodes: []*v1.Node{
			node("a", "10.0.0.1", true, now.Add(-time.Hour), lb),
			node("b", "10.0.0.2:7480", false, now.Add(-10*time.Second), lb), // within grace
			node("c", "10.0.0.3", false, now.Add(-time.Minute), lb),         // past grace
			node("d", "2001:db8::4", true, now, lb),                         // IPv6 only
			node("e", "10.0.0.5", true, now, lb),                            // gossip says dead
		},
		View:   []observed.Node{{Name: "e", Advertise: "10.0.0.5", Alive: false, LastChange: now.Add(-2 * time.Minute)}, {Name: "g", Advertise: "10.0.0.7", Alive: true, Labels: lb}},
		Leases: map[string]*v1.Lease{"lb": {Spec: v1.LeaseSpec{HolderIdentity: "b"}}, "empty": {}},
		Now:    now, Grace: 30 * time.Second,
	}
	d := &v1.DNSRecord{Spec: v1.DNSRecordSpec{Zone: "example.com", Name: "lb.example.com", Type: v1.RecordA, TTL: 60, Target: &v1.DNSTarget{NodeSelector: lb}}}
	w := WantedRecords(d, cl, own)
	var got []string
	for _, x := range w.Records {
		got = append(got, x.Content)
	}
	if strings.Join(got, ",") != "10.0.0.1,10.0.0.2,10.0.0.7" || !w.RecheckAt.Equal(now.Add(20*time.Second)) {
		t.Fatalf("selector: %v recheck %v", got, w.RecheckAt)
	}
	d.Spec.Type = v1.RecordAAAA
	if w := WantedRecords(d, cl, own); len(w.Records) != 1 || w.Records[0].Content != "2001:db8::4" {
		t.Fatalf("AAAA selector: %+v", w)
	}
	d.Spec.Type = v1.RecordA
	d.Spec.Target = &v1.DNSTarget{Lease: "lb"}
	if w := WantedRecords(d, cl, own); len(w.Records) != 1 || w.Records[0].Content != "10.0.0.2" {
		t.Fatalf("lease: %+v", w)
	}
	for _, l := range []string{"empty", "missing"} {
		d.Spec.Target = &v1.DNSTarget{Lease: l}
		if w := WantedRecords(d, cl, own); w.NoTarget == "" || len(w.Records) != 0 {
			t.Fatalf("lease %s: %+v", l, w)
		}
	}
	nw := WantedNodeRecords("Example.com.", 60, "c", cl)
	got = nil
	for _, x := range nw.Records {
		got = append(got, x.Type+" "+x.Name+" "+x.Content)
	}
	if strings.Join(got, ",") != "A a.example.com 10.0.0.1,A b.example.com 10.0.0.2,AAAA d.example.com 2001:db8::4,A g.example.com 10.0.0.7" {
		t.Fatalf("node records: %v", got)
	}
	if w.Digest() == nw.Digest() {
		t.Fatal("digests of different wants are equal")
	}
}

// BenchmarkCompute plans 200 wanted records against 200 observed (half drifted, 20 foreign).
func BenchmarkCompute(b *testing.B) {
	var want, have []cloudflare.Record
	for i := range 200 {
		name := fmt.Sprintf("n%d.example.com", i%50)
		want = append(want, r("", "A", name, fmt.Sprintf("10.0.%d.%d", i/250, i%250)))
		content := fmt.Sprintf("10.0.%d.%d", i/250, i%250)
		if i%2 == 0 {
			content = fmt.Sprintf("10.9.%d.%d", i/250, i%250)
		}
		have = append(have, r(fmt.Sprint(i), "A", name, content))
	}
	for i := range 20 {
		have = append(have, r(fmt.Sprint("f", i), "TXT", fmt.Sprintf("n%d.example.com", i), "x", "foreign"))
	}
	var p Plan
	for b.Loop() {
		p = Compute(want, have, own)
	}
	b.ReportMetric(float64(p.Changes()), "writes/plan")
}

package dns

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/dns/cloudflare"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// value reads a gauge or a counter.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// setReady writes node's Ready condition as the status controller would: Unknown when the
// node is not in its gossip view, False on gossip's dead or left verdict.
func (e *env) setReady(name string, st v1.ConditionStatus) {
	e.t.Helper()
	e.retry(func() error {
		obj, err := e.st.Get(e.ctx, v1.KindNode, name)
		if err != nil {
			return err
		}
		n := obj.(*v1.Node)
		v1.SetCondition(&n.Status.Conditions, v1.Condition{Type: v1.NodeReady, Status: st, LastTransitionTime: e.clock.Now()})
		_, err = e.st.UpdateStatus(e.ctx, n)
		return err
	})
}

// nodeRecordNames returns the names of the per-node records in the fake.
func (e *env) nodeRecordNames() string {
	var out []string
	for _, r := range e.cf.Records(zone) {
		if strings.HasPrefix(r.Comment, NodeOwner("constellation", "")) {
			out = append(out, strings.TrimSuffix(r.Name, "."+zone))
		}
	}
	return strings.Join(out, ",")
}

func threeNodes(t *testing.T) *env {
	e := newEnv(t, Config{NodeRecordsZone: zone, NodeGrace: 10 * time.Second}, cloudflare.Config{})
	for i, n := range []string{"n1", "n2", "n3"} {
		e.node(n, "10.0.0."+string(rune('1'+i)), map[string]string{"tier": "web"}, true)
		e.view.SetNode(observed.Node{Name: n, Advertise: "10.0.0." + string(rune('1'+i)), Alive: true, State: "alive"})
	}
	e.reconcile(nodeRecordsKey)
	if got := e.nodeRecordNames(); got != "n1,n2,n3" {
		t.Fatalf("node records: %s", got)
	}
	return e
}

// TestNodeRecordsSurvivePartialView (B13): the holder's gossip view loses n2 and n3 (they are
// fine; it just cannot see them) and the status controller, which has the same view, marks
// them Ready=Unknown. Past the grace period their records must still be there, untouched.
func TestNodeRecordsSurvivePartialView(t *testing.T) {
	e := threeNodes(t)
	for _, n := range []string{"n2", "n3"} {
		e.view.RemoveNode(n)
		e.setReady(n, v1.ConditionUnknown)
	}
	e.clock.Advance(time.Minute)
	e.cf.ResetCalls()
	e.reconcile(nodeRecordsKey)
	if got := e.nodeRecordNames(); got != "n1,n2,n3" {
		t.Fatalf("records after a partial view: %s (want all three kept)", got)
	}
	if w := e.cf.Writes(); w != 0 {
		t.Fatalf("%d writes for nodes merely not seen", w)
	}
	// n3 declared dead while n2 is still unseen: two of three nodes are not Ready, so the
	// disruption brake holds (pkg/nodehealth counts unseen nodes too): nothing is deleted.
	e.view.SetNode(observed.Node{Name: "n3", Advertise: "10.0.0.3", Alive: false, State: "dead", LastChange: e.clock.Now()})
	e.setReady("n3", v1.ConditionFalse)
	e.clock.Advance(11 * time.Second)
	e.reconcile(nodeRecordsKey)
	if got := e.nodeRecordNames(); got != "n1,n2,n3" {
		t.Fatalf("records with n2 unseen and n3 dead (brake): %s", got)
	}
	// n2 seen again: a positive verdict on one node of three (past the grace period): its
	// record goes, the brake is off.
	e.view.SetNode(observed.Node{Name: "n2", Advertise: "10.0.0.2", Alive: true, State: "alive"})
	e.setReady("n2", v1.ConditionTrue)
	e.reconcile(nodeRecordsKey)
	if got := e.nodeRecordNames(); got != "n1,n2" {
		t.Fatalf("records after n3 was declared dead: %s", got)
	}
	// n3 removed from the cluster (ctl node remove; gossip prunes it). Then n2's Node object
	// is deleted too, while gossip does not see it: the record goes (one of two nodes).
	e.view.RemoveNode("n3")
	e.view.RemoveNode("n2")
	for _, n := range []string{"n3", "n2"} {
		if _, err := e.st.Delete(e.ctx, v1.KindNode, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	e.reconcile(nodeRecordsKey)
	if got := e.nodeRecordNames(); got != "n1" {
		t.Fatalf("records after n2's Node object was deleted: %s", got)
	}
	if n := value(t, e.ctl.brakedDeletes); n != 1 {
		t.Fatalf("brake held %v deletions; want only n3's, held while n2 was unseen", n)
	}
}

// TestDisruptionBrake: the holder is gossip-isolated. Its failure detector declares the two
// other nodes dead and the status controller writes Ready=False for them: positive verdicts,
// but for more than half of the nodes at once. DNS deletes nothing, neither per-node records
// nor addresses of a nodeSelector record, and says so (log and metrics) until the view heals.
func TestDisruptionBrake(t *testing.T) {
	e := threeNodes(t)
	e.record("web", v1.DNSRecordSpec{Zone: zone, Name: "web.example.com", Type: v1.RecordA, Target: &v1.DNSTarget{NodeSelector: map[string]string{"tier": "web"}}})
	e.reconcile(rec("web"))
	if got := strings.Join(contents(e.records("web.example.com")), ","); got != "A 10.0.0.1,A 10.0.0.2,A 10.0.0.3" {
		t.Fatalf("selector record: %s", got)
	}
	for _, n := range []string{"n2", "n3"} {
		e.view.SetNode(observed.Node{Name: n, Alive: false, State: "dead", LastChange: e.clock.Now()})
		e.setReady(n, v1.ConditionFalse)
	}
	e.clock.Advance(time.Minute)
	e.cf.ResetCalls()
	e.reconcile(nodeRecordsKey)
	e.reconcile(rec("web"))
	if got := e.nodeRecordNames(); got != "n1,n2,n3" {
		t.Fatalf("per-node records under the brake: %s", got)
	}
	if got := strings.Join(contents(e.records("web.example.com")), ","); got != "A 10.0.0.1,A 10.0.0.2,A 10.0.0.3" {
		t.Fatalf("selector record under the brake: %s", got)
	}
	if w := e.cf.Writes(); w != 0 {
		t.Fatalf("%d writes under the brake", w)
	}
	if c := synced(e.get("web")); c == nil || !strings.Contains(c.Message, "disruption brake: 2 of 3 nodes look lost") {
		t.Fatalf("the selector record does not say it is braked: %+v", c)
	}
	if on, held := value(t, e.ctl.brakeOn), value(t, e.ctl.brakedDeletes); on != 1 || held != 4 {
		t.Fatalf("brake gauge %v (want 1), held deletions %v (want 2 node records + 2 selector addresses)", on, held)
	}
	// The view heals: the brake lets go, nothing was lost.
	for i, n := range []string{"n2", "n3"} {
		e.view.SetNode(observed.Node{Name: n, Advertise: "10.0.0." + string(rune('2'+i)), Alive: true, State: "alive", LastChange: e.clock.Now()})
		e.setReady(n, v1.ConditionTrue)
	}
	e.reconcile(nodeRecordsKey)
	if got := e.nodeRecordNames(); got != "n1,n2,n3" || value(t, e.ctl.brakeOn) != 0 || e.cf.Writes() != 0 {
		t.Fatalf("after healing: %s, brake %v, %d writes", got, value(t, e.ctl.brakeOn), e.cf.Writes())
	}
}

// TestTargetsPassSeesLostNode: a node going from Unknown to lost changes no wanted record's
// content but must still reach the per-node records (its record is to be deleted).
func TestTargetsPassSeesLostNode(t *testing.T) {
	e := threeNodes(t)
	var got []Key
	e.ctl.enqueue = func(k Key, _ time.Duration) { got = append(got, k) }
	e.setReady("n3", v1.ConditionUnknown)
	e.view.RemoveNode("n3")
	e.clock.Advance(time.Minute)
	if _, err := e.ctl.Reconcile(context.Background(), targetsKey); err != nil {
		t.Fatal(err)
	}
	e.reconcile(nodeRecordsKey)
	got = nil
	e.setReady("n3", v1.ConditionFalse)
	e.clock.Advance(time.Minute)
	if _, err := e.ctl.Reconcile(context.Background(), targetsKey); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != nodeRecordsKey {
		t.Fatalf("enqueued %v, want the node records", got)
	}
}

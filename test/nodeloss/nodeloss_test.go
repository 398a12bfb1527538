// Package nodeloss tests, across the scheduler and the status controller on the memory store,
// that a node counts as lost only on a positive verdict (pkg/nodehealth): an agent restart, a
// holder whose gossip view is incomplete, or half the cluster vanishing at once moves nothing.
package nodeloss

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/controllers/status"
	"github.com/constellation-sh/constellation/pkg/nodehealth"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type world struct {
	t    *testing.T
	ctx  context.Context
	st   store.Store
	view *observed.Set
	clk  *clocktesting.FakeClock
}

// newWorld registers Ready nodes, each alive in the view, and a Service "web" with one replica
// on each of them, every replica running and healthy.
func newWorld(t *testing.T, nodes ...string) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), st: store.NewMemory(), view: observed.NewSet(), clk: clocktesting.NewFakeClock(t0)}
	for _, n := range nodes {
		o, err := w.st.Create(w.ctx, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: n}})
		if err != nil {
			t.Fatal(err)
		}
		node := o.(*v1.Node)
		node.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: v1.ReasonNodeAlive, LastTransitionTime: t0}}
		if _, err := w.st.UpdateStatus(w.ctx, node); err != nil {
			t.Fatal(err)
		}
		w.view.SetNode(observed.Node{Name: n, Alive: true, State: observed.StateAlive, Advertise: "10.0.0.1"})
	}
	replicas := int32(len(nodes))
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &replicas}}
	svc.Default()
	o, err := w.st.Create(w.ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	svc = o.(*v1.Service)
	h := spechash.Of(&svc.Spec)
	for i, n := range nodes {
		svc.Status.Assignments = append(svc.Status.Assignments, v1.Assignment{Index: int32(i), Node: n, SpecHash: h})
		w.view.SetNodeReplicas(n, []observed.Replica{{Service: "web", Index: int32(i), Node: n, SpecHash: h, State: v1.ReplicaRunning, Health: v1.HealthHealthy}})
	}
	svc.Status.CurrentRevision = &v1.ServiceRevision{SpecHash: h, Spec: svc.Spec}
	if _, err := w.st.UpdateStatus(w.ctx, svc); err != nil {
		t.Fatal(err)
	}
	return w
}

// pass runs one status pass over every Node and Service, then one scheduler pass over web.
func (w *world) pass() {
	w.t.Helper()
	sc, err := status.New(status.Config{Store: w.st, View: w.view, SpecHash: spechash.Current, Clock: w.clk})
	if err != nil {
		w.t.Fatal(err)
	}
	nodes, _, _ := w.st.List(w.ctx, v1.KindNode, v1.Selector{})
	for _, n := range nodes {
		if _, err := sc.Reconcile(w.ctx, v1.Key{Kind: v1.KindNode, Name: n.GetMetadata().Name}); err != nil {
			w.t.Fatal(err)
		}
	}
	sched, err := scheduler.New(scheduler.Config{Store: w.st, View: w.view, Clock: w.clk, Health: nodehealth.Policy{RestartGrace: time.Minute}})
	if err != nil {
		w.t.Fatal(err)
	}
	for range 3 { // a few passes: one pass may only take one rolling step
		if _, err := sched.Reconcile(w.ctx, "web"); err != nil {
			w.t.Fatal(err)
		}
	}
}

// placement renders web's assignments as "0:n1 1:n2 ...".
func (w *world) placement() string {
	w.t.Helper()
	o, err := w.st.Get(w.ctx, v1.KindService, "web")
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, a := range o.(*v1.Service).Status.Assignments {
		out = append(out, itoa(a.Index)+":"+a.Node)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (w *world) progressing() v1.Condition {
	o, _ := w.st.Get(w.ctx, v1.KindService, "web")
	if c := v1.FindCondition(o.(*v1.Service).Status.Conditions, v1.ServiceProgressing); c != nil {
		return *c
	}
	return v1.Condition{}
}

func itoa(i int32) string { return string(rune('0' + i)) }

// An agent restart is a graceful leave with the restart marker: within the grace nothing moves;
// once the grace has passed without the node coming back, its replica is re-placed.
func TestAgentRestartMovesNothingWithinTheGrace(t *testing.T) {
	w := newWorld(t, "n1", "n2", "n3")
	w.view.SetNode(observed.Node{Name: "n3", State: observed.StateRestarting, LastChange: t0})
	w.clk.SetTime(t0.Add(30 * time.Second))
	w.pass()
	if got := w.placement(); got != "0:n1 1:n2 2:n3" {
		t.Fatalf("n3's replica moved while its agent restarted: %s", got)
	}
	w.clk.SetTime(t0.Add(61 * time.Second))
	w.pass()
	if got := w.placement(); strings.Contains(got, "n3") {
		t.Fatalf("past the grace, n3's replica must be re-placed: %s", got)
	}
}

// A node declared dead (a kill, no graceful leave) is re-placed at once, as before.
func TestDeadNodeIsReplacedAtOnce(t *testing.T) {
	w := newWorld(t, "n1", "n2", "n3")
	w.view.SetNode(observed.Node{Name: "n3", State: observed.StateDead, LastChange: t0})
	w.clk.SetTime(t0.Add(time.Second))
	w.pass()
	if got := w.placement(); strings.Contains(got, "n3") || !strings.Contains(got, "2:") {
		t.Fatalf("a dead node's replica must be re-placed at once: %s", got)
	}
}

// A new holder whose gossip has not joined sees only itself: the others are Unknown, not lost
// (review B3). Nothing moves, and the status controller does not record them lost.
func TestHolderWithPartialViewMovesNothing(t *testing.T) {
	w := newWorld(t, "n1", "n2", "n3")
	w.view.RemoveNode("n2")
	w.view.RemoveNode("n3")
	w.clk.SetTime(t0.Add(time.Hour))
	w.pass()
	if got := w.placement(); got != "0:n1 1:n2 2:n3" {
		t.Fatalf("a partial view moved replicas: %s", got)
	}
	o, _ := w.st.Get(w.ctx, v1.KindNode, "n2")
	if c := v1.FindCondition(o.(*v1.Node).Status.Conditions, v1.NodeReady); c == nil || c.Status != v1.ConditionUnknown {
		t.Fatalf("n2 Ready = %+v, want Unknown", c)
	}
}

// Two of three nodes dead at once: the disruption brake holds; the scheduler says so and moves
// nothing. When one returns, the other's replica is re-placed.
func TestDisruptionBrake(t *testing.T) {
	w := newWorld(t, "n1", "n2", "n3")
	w.view.SetNode(observed.Node{Name: "n2", State: observed.StateDead, LastChange: t0})
	w.view.SetNode(observed.Node{Name: "n3", State: observed.StateDead, LastChange: t0})
	w.clk.SetTime(t0.Add(time.Second))
	w.pass()
	if got := w.placement(); got != "0:n1 1:n2 2:n3" {
		t.Fatalf("the brake must hold with 2 of 3 nodes lost: %s", got)
	}
	if c := w.progressing(); c.Reason != v1.ReasonDisruptionBrake || !strings.Contains(c.Message, "2 of 3 nodes") {
		t.Fatalf("Progressing = %+v, want the brake named", c)
	}
	w.view.SetNode(observed.Node{Name: "n2", Alive: true, State: observed.StateAlive})
	w.clk.SetTime(t0.Add(2 * time.Second))
	w.pass()
	if got := w.placement(); strings.Contains(got, "n3") || !strings.Contains(got, "1:n2") {
		t.Fatalf("with the brake released, n3's replica must move and n2's stay: %s", got)
	}
	if c := w.progressing(); c.Reason == v1.ReasonDisruptionBrake {
		t.Fatalf("the brake condition must clear: %+v", c)
	}
}

// A dead node recorded lost in the store stays lost when gossip later forgets it (it was
// pruned): its replicas do not come back to it, and a holder that never knew it agrees.
func TestRecordedLossSurvivesGossipForgetting(t *testing.T) {
	w := newWorld(t, "n1", "n2", "n3", "n4")
	w.view.SetNode(observed.Node{Name: "n4", State: observed.StateDead, LastChange: t0})
	w.clk.SetTime(t0.Add(time.Second))
	w.pass()
	w.view.RemoveNode("n4")
	w.clk.SetTime(t0.Add(2 * time.Hour))
	w.pass()
	o, _ := w.st.Get(w.ctx, v1.KindNode, "n4")
	if c := v1.FindCondition(o.(*v1.Node).Status.Conditions, v1.NodeReady); c == nil || c.Status != v1.ConditionFalse || c.Reason != v1.ReasonNodeDead {
		t.Fatalf("n4 Ready = %+v: the recorded loss must stay", c)
	}
	if got := w.placement(); strings.Contains(got, "n4") {
		t.Fatalf("placement %s", got)
	}
}

// Labels in metadata.labels count for placement as they do for DNS and the lb campaign
// (v1.Node.EffectiveLabels; review B10).
func TestMetadataLabelsCountForPlacement(t *testing.T) {
	w := newWorld(t, "n1")
	o, _ := w.st.Get(w.ctx, v1.KindNode, "n1")
	n := o.(*v1.Node)
	n.Metadata.Labels = map[string]string{"role": "lb"}
	if _, err := w.st.Update(w.ctx, n); err != nil {
		t.Fatal(err)
	}
	o, _ = w.st.Get(w.ctx, v1.KindService, "web")
	svc := o.(*v1.Service)
	svc.Spec.Placement = &v1.Placement{NodeSelector: map[string]string{"role": "lb"}}
	if _, err := w.st.Update(w.ctx, svc); err != nil {
		t.Fatal(err)
	}
	w.pass()
	if c := w.progressing(); c.Reason == v1.ReasonUnschedulable {
		t.Fatalf("a node labelled role=lb in metadata must take a role=lb replica: %+v", c)
	}
	if got := w.placement(); got != "0:n1" {
		t.Fatalf("placement %s", got)
	}
}

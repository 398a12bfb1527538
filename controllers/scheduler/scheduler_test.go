package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

func addNode(t *testing.T, st store.Store, name string) {
	t.Helper()
	ctx := context.Background()
	o, err := st.Create(ctx, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	n := o.(*v1.Node)
	n.Status.Conditions = []v1.Condition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}
	if _, err := st.UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func getSvc(t *testing.T, st store.Store, name string) *v1.Service {
	t.Helper()
	o, err := st.Get(context.Background(), v1.KindService, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1.Service)
}

func TestReconcileWritesAssignmentsAndUndo(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	addNode(t, st, "b")
	view := observed.NewSet()
	// Nodes take new replicas only once gossip sees them (a Ready Node object alone is not seen).
	view.SetNode(observed.Node{Name: "a", Alive: true})
	view.SetNode(observed.Node{Name: "b", Alive: true})
	s, err := New(Config{Store: st, View: view, Clock: clocktesting.NewFakePassiveClock(time.Unix(1000, 0))})
	if err != nil {
		t.Fatal(err)
	}
	three := int32(3)
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &three}}
	if _, err := st.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	got := getSvc(t, st, "web")
	h1 := spechash.Of(&got.Spec)
	if len(got.Status.Assignments) != 3 || got.Status.CurrentRevision == nil || got.Status.CurrentRevision.SpecHash != h1 {
		t.Fatalf("status %+v", got.Status)
	}
	if c := v1.FindCondition(got.Status.Conditions, v1.ServiceProgressing); c == nil || c.Reason != v1.ReasonRollingUpdate {
		t.Fatalf("condition %+v", c)
	}
	// Report them ready from the view.
	view.SetNode(observed.Node{Name: "a", Alive: true})
	view.SetNode(observed.Node{Name: "b", Alive: true})
	report := func(svc *v1.Service) {
		per := map[string][]observed.Replica{}
		for _, a := range svc.Status.Assignments {
			per[a.Node] = append(per[a.Node], observed.Replica{Service: "web", Index: a.Index, Node: a.Node, SpecHash: a.SpecHash, State: v1.ReplicaRunning, Health: v1.HealthHealthy})
		}
		view.SetNodeReplicas("a", per["a"])
		view.SetNodeReplicas("b", per["b"])
	}
	report(got)
	if _, err := s.Reconcile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if c := v1.FindCondition(getSvc(t, st, "web").Status.Conditions, v1.ServiceProgressing); c.Reason != v1.ReasonRolloutComplete {
		t.Fatalf("condition %+v", c)
	}
	if err := RolloutUndoTo(ctx, st, "web", 0); !errors.Is(err, ErrNoPreviousRevision) {
		t.Fatalf("undo without history: %v", err)
	}
	// Update the image, roll it out step by step.
	upd := getSvc(t, st, "web")
	upd.Spec.Image = "echo:2"
	if _, err := st.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := s.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		report(getSvc(t, st, "web"))
	}
	got = getSvc(t, st, "web")
	h2 := spechash.Of(&got.Spec)
	for _, a := range got.Status.Assignments {
		if a.SpecHash != h2 {
			t.Fatalf("not rolled: %v", got.Status.Assignments)
		}
	}
	if got.Status.PreviousRevision == nil || got.Status.PreviousRevision.SpecHash != h1 {
		t.Fatalf("previous revision %+v", got.Status.PreviousRevision)
	}
	if err := RolloutUndoTo(ctx, st, "web", 0); err != nil {
		t.Fatal(err)
	}
	if got := getSvc(t, st, "web"); got.Spec.Image != "echo:1" || spechash.Of(&got.Spec) != h1 || got.Spec.DesiredReplicas() != 3 {
		t.Fatalf("after undo: %+v", got.Spec)
	}
	// A node that dies loses its replicas to the other one.
	view.SetNode(observed.Node{Name: "b", Alive: false})
	if _, err := s.Reconcile(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	for _, a := range getSvc(t, st, "web").Status.Assignments {
		if a.Node != "a" {
			t.Fatalf("replica left on dead node: %v", getSvc(t, st, "web").Status.Assignments)
		}
	}
}

func TestReconcileNotLeaderDoesNotWrite(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	s, _ := New(Config{Store: st, IsLeader: func() bool { return false }})
	if _, err := st.Create(ctx, &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"}, Spec: v1.ServiceSpec{Image: "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(ctx, "web"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("got %v", err)
	}
	if len(getSvc(t, st, "web").Status.Assignments) != 0 {
		t.Fatal("wrote without the lease")
	}
}

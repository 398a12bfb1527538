package scheduler

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// An image-less upstream Service has nothing to place, whatever replicas would default to.
func TestReconcilePlacesNothingForUpstreamService(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true})
	s, err := New(Config{Store: st, View: view, Clock: clocktesting.NewFakePassiveClock(time.Unix(1000, 0))})
	if err != nil {
		t.Fatal(err)
	}
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "llm"},
		Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", ContainerPort: 80}},
			Upstreams: []v1.Upstream{{URL: "https://a.example.com"}}}}
	svc.Default()
	svc.Spec.Replicas = nil // DesiredReplicas is 0 for an upstream Service even unset
	if _, err := st.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(ctx, "llm"); err != nil {
		t.Fatal(err)
	}
	if got := getSvc(t, st, "llm"); len(got.Status.Assignments) != 0 {
		t.Fatalf("assignments %+v, want none for an upstream Service", got.Status.Assignments)
	}
}

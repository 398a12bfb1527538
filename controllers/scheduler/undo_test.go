package scheduler

import (
	"context"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Undo brings back every field the spec hash covers, not only image and env: after it the spec
// hashes to the previous revision's, so the scheduler rolls back to exactly that container
// (host access and the shared network namespace included).
func TestRolloutUndoRestoresEveryHashedField(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	prev := v1.ServiceSpec{
		Image: "registry.local/app:1", HostAccess: true, Privileged: true, HostPID: true,
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"MKNOD"},
		Network: &v1.NetworkSpec{Mode: "service:gw"},
	}
	cur := v1.ServiceSpec{Image: "registry.local/app:2"}
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "app"}, Spec: cur}
	svc.Default()
	created, err := st.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	s := created.(*v1.Service)
	s.Status.PreviousRevision = &v1.ServiceRevision{SpecHash: spechash.Of(&prev), Spec: prev}
	if _, err := st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := RolloutUndoTo(ctx, st, "app", 0); err != nil {
		t.Fatal(err)
	}
	o, err := st.Get(ctx, v1.KindService, "app")
	if err != nil {
		t.Fatal(err)
	}
	got := o.(*v1.Service).Spec
	if h, want := spechash.Of(&got), spechash.Of(&prev); h != want {
		t.Errorf("after undo the spec hashes to %s, the previous revision to %s: %+v", h, want, got)
	}
	if got.Network == nil || got.Network.Mode != "service:gw" || !got.Privileged || !got.HostAccess {
		t.Errorf("undo left network %+v privileged %v hostAccess %v", got.Network, got.Privileged, got.HostAccess)
	}
}

package scheduler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// TestRevisionHistory: every new spec is a numbered revision; the history keeps the limit's
// worth before the current one, oldest dropped first, without replicas or routes; undo to a
// revision brings its container back as a new revision, and that spec leaves the history.
func TestRevisionHistory(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC))
	s, err := New(Config{Store: st, Clock: clk, RevisionHistoryLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	two := int32(2)
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &two, Ports: []v1.ServicePort{{Name: "http", ContainerPort: 8080}}, Routes: &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com"}}}}}
	if _, err := st.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	reconcile := func() *v1.Service {
		t.Helper()
		if _, err := s.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		return getSvc(t, st, "web")
	}
	setImage := func(image string) {
		t.Helper()
		got := getSvc(t, st, "web")
		got.Spec.Image = image
		if _, err := st.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(clk.Now().Add(time.Minute))
	}
	got := reconcile()
	if r := got.Status.CurrentRevision; r == nil || r.Revision != 1 || r.CreatedAt == nil || !r.CreatedAt.Equal(clk.Now()) || len(got.Status.RevisionHistory) != 0 {
		t.Fatalf("first revision %+v, history %+v", r, got.Status.RevisionHistory)
	}
	// Replicas alone are not a revision.
	got.Spec.Replicas = ptr32(3)
	if _, err := st.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got = reconcile(); got.Status.CurrentRevision.Revision != 1 {
		t.Fatalf("scaling made revision %d", got.Status.CurrentRevision.Revision)
	}
	for i := 2; i <= 5; i++ {
		setImage(fmt.Sprintf("echo:%d", i))
		got = reconcile()
	}
	images := func(hist []v1.ServiceRevision) string {
		out := ""
		for _, r := range hist {
			out += fmt.Sprintf("%d=%s ", r.Revision, r.Spec.Image)
		}
		return out
	}
	if cur := got.Status.CurrentRevision; cur.Revision != 5 || cur.Spec.Image != "echo:5" {
		t.Fatalf("current %+v", cur)
	}
	if h := images(got.Status.RevisionHistory); h != "2=echo:2 3=echo:3 4=echo:4 " {
		t.Fatalf("history %q, want revisions 2-4 (limit 3)", h)
	}
	for _, r := range got.Status.RevisionHistory {
		if r.Spec.Replicas != nil || r.Spec.Routes != nil || r.SpecHash != spechash.Of(&r.Spec) {
			t.Fatalf("history entry keeps more than the container, or a wrong hash: %+v", r)
		}
	}
	if p := got.Status.PreviousRevision; p == nil || p.Revision != 4 || p.Spec.Routes == nil {
		t.Fatalf("previous revision %+v: want 4, whole spec", p)
	}
	// Undo to 2: echo:2 comes back as revision 6, and leaves the history.
	if err := RolloutUndoTo(ctx, st, "web", 2); err != nil {
		t.Fatal(err)
	}
	got = reconcile()
	if cur := got.Status.CurrentRevision; cur.Revision != 6 || cur.Spec.Image != "echo:2" || got.Spec.DesiredReplicas() != 3 {
		t.Fatalf("after undo to 2: current %+v, replicas %d", cur, got.Spec.DesiredReplicas())
	}
	if h := images(got.Status.RevisionHistory); h != "3=echo:3 4=echo:4 5=echo:5 " {
		t.Fatalf("history after undo %q", h)
	}
	// A revision that is gone, and the current one.
	if err := RolloutUndoTo(ctx, st, "web", 1); !errors.Is(err, ErrRevisionNotFound) || err.Error() != "rollout undo services/web: scheduler: no such revision in the history: revision 1 (kept: 3, 4, 5, 6 (current))" {
		t.Fatalf("undo to a dropped revision: %v", err)
	}
	before := getSvc(t, st, "web").Metadata.ResourceVersion
	if err := RolloutUndoTo(ctx, st, "web", 6); err != nil || getSvc(t, st, "web").Metadata.ResourceVersion != before {
		t.Fatalf("undo to the current revision wrote something: %v", err)
	}
	// Plain undo still goes back to the previous revision (5), and forward again.
	if err := RolloutUndoTo(ctx, st, "web", 0); err != nil {
		t.Fatal(err)
	}
	if got = reconcile(); got.Spec.Image != "echo:5" || got.Status.CurrentRevision.Revision != 7 || got.Status.PreviousRevision.Spec.Image != "echo:2" {
		t.Fatalf("undo: image %s, current %+v", got.Spec.Image, got.Status.CurrentRevision)
	}
}

// TestRevisionHistoryNumbersOldRevisions: a Service whose revisions were written before they
// were numbered gets numbers (previous 1, current 2) at its next revision.
func TestRevisionHistoryNumbersOldRevisions(t *testing.T) {
	prev := v1.ServiceSpec{Image: "a:1"}
	cur := v1.ServiceSpec{Image: "a:2"}
	st := v1.ServiceStatus{PreviousRevision: &v1.ServiceRevision{SpecHash: spechash.Of(&prev), Spec: prev},
		CurrentRevision: &v1.ServiceRevision{SpecHash: spechash.Of(&cur), Spec: cur}}
	next := v1.ServiceSpec{Image: "a:3"}
	pushRevision(&st, v1.ServiceRevision{SpecHash: spechash.Of(&next), Spec: next}, 10, time.Unix(0, 0))
	if len(st.RevisionHistory) != 2 || st.RevisionHistory[0].Revision != 1 || st.RevisionHistory[1].Revision != 2 || st.CurrentRevision.Revision != 3 || st.PreviousRevision.Revision != 2 {
		t.Fatalf("%+v", st)
	}
}

// TestUndoRestoresRestartedAt: undoing a restart goes back to the container before it.
func TestUndoRestoresRestartedAt(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "app"}, Spec: v1.ServiceSpec{Image: "a:1"}}
	prev := svc.Spec
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	svc.Spec.RestartedAt = &at
	if spechash.Of(&svc.Spec) == spechash.Of(&prev) {
		t.Fatal("restartedAt is not part of the spec hash")
	}
	o, err := st.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	s := o.(*v1.Service)
	s.Status.PreviousRevision = &v1.ServiceRevision{SpecHash: spechash.Of(&prev), Spec: prev, Revision: 1}
	if _, err := st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := RolloutUndoTo(ctx, st, "app", 0); err != nil {
		t.Fatal(err)
	}
	if got := getSvc(t, st, "app"); got.Spec.RestartedAt != nil || spechash.Of(&got.Spec) != spechash.Of(&prev) {
		t.Fatalf("after undo: %+v", got.Spec)
	}
}

func ptr32(v int32) *int32 { return &v }

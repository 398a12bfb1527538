package storetest

import (
	"errors"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

func testDelete(t *testing.T, s store.Store) {
	mustCreate(t, s, Service("web", nil))
	gone, err := s.Delete(ctx(t), v1.KindService, "web", "")
	if err != nil {
		t.Fatal(err)
	}
	if gone.GetMetadata().Name != "web" {
		t.Fatalf("delete returned %+v", gone)
	}
	if _, err := s.Get(ctx(t), v1.KindService, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: err = %v", err)
	}
	if _, err := s.Delete(ctx(t), v1.KindService, "web", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: err = %v, want ErrNotFound", err)
	}
	// The name can be reused, with a new uid.
	again := mustCreate(t, s, Service("web", nil))
	if again.GetMetadata().UID == gone.GetMetadata().UID {
		t.Fatal("recreated object kept the old uid")
	}
}

func testDeleteFinalizers(t *testing.T, s store.Store) {
	in := Service("web", nil)
	in.Metadata.Finalizers = []string{"constellation/docker"}
	mustCreate(t, s, in)
	marked, err := s.Delete(ctx(t), v1.KindService, "web", "")
	if err != nil {
		t.Fatal(err)
	}
	if marked.GetMetadata().DeletionTimestamp == nil {
		t.Fatal("delete with a finalizer did not set deletionTimestamp")
	}
	got, err := s.Get(ctx(t), v1.KindService, "web")
	if err != nil {
		t.Fatalf("object with a finalizer vanished: %v", err)
	}
	// Deleting again changes nothing.
	rev1, _ := s.Revision(ctx(t))
	if _, err := s.Delete(ctx(t), v1.KindService, "web", ""); err != nil {
		t.Fatal(err)
	}
	if rev2, _ := s.Revision(ctx(t)); rev2 != rev1 {
		t.Fatalf("repeated delete consumed a revision")
	}
	// Removing the last finalizer removes the object.
	fin := got.DeepCopyObject()
	fin.GetMetadata().Finalizers = nil
	if _, err := s.Update(ctx(t), fin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx(t), v1.KindService, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("object still there after its last finalizer went: %v", err)
	}
}

func testDeletePrecondition(t *testing.T, s store.Store) {
	o := mustCreate(t, s, Service("web", nil))
	u := o.DeepCopyObject().(*v1.Service)
	u.Spec.Image = "registry.local/web:2"
	if _, err := s.Update(ctx(t), u); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx(t), v1.KindService, "web", o.GetMetadata().ResourceVersion); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale delete: err = %v, want ErrConflict", err)
	}
}

package dnstest

import (
	"context"
	"errors"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// racingStore writes the object's status between a test's read and its write, the first time
// only: what the DNS controller did to TestOneWriterUnderPartition's records ("resourceVersion
// conflict: have 123, got 116").
type racingStore struct {
	store.Store
	raced bool
}

func (s *racingStore) Get(ctx context.Context, kind, name string, o ...store.ReadOption) (v1.Object, error) {
	obj, err := s.Store.Get(ctx, kind, name, o...)
	if err == nil && !s.raced {
		s.raced = true
		cp := obj.DeepCopyObject().(*v1.DNSRecord)
		cp.Status.ObservedGeneration = cp.Metadata.Generation
		if _, err := s.Store.UpdateStatus(ctx, cp); err != nil {
			return nil, err
		}
	}
	return obj, err
}

// TestUpdateOrCreateRetriesConflict: a status write landing between the read and the write
// makes the write conflict; updateOrCreate reads again and its change lands.
func TestUpdateOrCreateRetriesConflict(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	d := &v1.DNSRecord{Spec: v1.DNSRecordSpec{Zone: zone, Name: "r." + zone, Type: v1.RecordTXT, Content: "v0"}}
	d.Metadata.Name = "r"
	d.Default()
	if _, err := mem.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	st := &racingStore{Store: mem}
	// What the test did before: one read, one write.
	obj, _ := st.Get(ctx, v1.KindDNSRecord, "r")
	cur := obj.(*v1.DNSRecord)
	cur.Spec.Content = "v1"
	if _, err := st.Update(ctx, cur); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a write racing a status update: %v, want a conflict", err)
	}
	st.raced = false
	if err := updateOrCreate(ctx, st, v1.KindDNSRecord, "r", func(o v1.Object) v1.Object {
		d := o.(*v1.DNSRecord)
		d.Spec.Content = "v2"
		return d
	}); err != nil {
		t.Fatalf("updateOrCreate: %v", err)
	}
	got, err := mem.Get(ctx, v1.KindDNSRecord, "r")
	if err != nil || got.(*v1.DNSRecord).Spec.Content != "v2" {
		t.Fatalf("after updateOrCreate: %v %+v", err, got)
	}
}

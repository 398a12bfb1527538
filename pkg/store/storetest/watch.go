package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

func nextEvent(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return store.Event{}
}

func testWatch(t *testing.T, s store.Store) {
	first := mustCreate(t, s, Service("before", nil))
	start := rv(t, first)

	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	ch, err := s.Watch(wctx, v1.KindService, start)
	if err != nil {
		t.Fatal(err)
	}
	o := mustCreate(t, s, Service("web", nil))
	u := o.DeepCopyObject().(*v1.Service)
	u.Spec.Image = "registry.local/web:2"
	if _, err := s.Update(ctx(t), u); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: "n1"}})
	if _, err := s.Delete(ctx(t), v1.KindService, "web", ""); err != nil {
		t.Fatal(err)
	}
	want := []store.EventType{store.Added, store.Modified, store.Deleted}
	last := start
	for i, w := range want {
		ev := nextEvent(t, ch)
		if ev.Type != w || ev.Object == nil || ev.Object.GetMetadata().Name != "web" {
			t.Fatalf("event %d = %s %v, want %s web", i, ev.Type, ev.Object, w)
		}
		if ev.Revision <= last || rv(t, ev.Object) != ev.Revision {
			t.Fatalf("event %d revision %d (object rv %s) after %d", i, ev.Revision, ev.Object.GetMetadata().ResourceVersion, last)
		}
		last = ev.Revision
	}
	// A second watch from the same revision replays the same history.
	ch2, err := s.Watch(wctx, v1.KindService, start)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if ev := nextEvent(t, ch2); ev.Type != w {
			t.Fatalf("replayed event %d = %s, want %s", i, ev.Type, w)
		}
	}
	// Cancelling the context closes the channel.
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed after cancel")
		}
	}
}

func testWatchAllKinds(t *testing.T, s store.Store) {
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	ch, err := s.Watch(wctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, Service("web", nil))
	mustCreate(t, s, &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}, Metadata: v1.ObjectMeta{Name: "n1"}})
	if ev := nextEvent(t, ch); ev.Object.GetTypeMeta().Kind != v1.KindService {
		t.Fatalf("first event %v", ev.Object)
	}
	if ev := nextEvent(t, ch); ev.Object.GetTypeMeta().Kind != v1.KindNode {
		t.Fatalf("second event %v", ev.Object)
	}
}

func testWatchTooOld(t *testing.T, s store.Store) {
	var last v1.Object
	for i := range 5 {
		last = mustCreate(t, s, Service(fmt.Sprintf("s%d", i), nil))
	}
	if err := s.Compact(ctx(t), rv(t, last)-1); err != nil {
		t.Fatal(err)
	}
	_, err := s.Watch(ctx(t), v1.KindService, 1)
	if !errors.Is(err, store.ErrTooOld) {
		t.Fatalf("watch from compacted revision: err = %v, want ErrTooOld", err)
	}
	// From the compaction point on, the watch works.
	ch, err := s.Watch(ctx(t), v1.KindService, rv(t, last)-1)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, ch); ev.Object.GetMetadata().Name != "s4" {
		t.Fatalf("event %v, want s4", ev.Object)
	}
}

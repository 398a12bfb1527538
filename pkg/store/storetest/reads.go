package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

func testList(t *testing.T, s store.Store) {
	mustCreate(t, s, Service("b", map[string]string{"app": "web", "tier": "front"}))
	mustCreate(t, s, Service("a", map[string]string{"app": "web"}))
	mustCreate(t, s, Service("c", map[string]string{"app": "db"}))
	n := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}}
	n.Metadata.Name = "a"
	mustCreate(t, s, n)

	all, rev, err := s.List(ctx(t), v1.KindService, v1.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if names(all) != "a,b,c" {
		t.Fatalf("list = %s, want a,b,c sorted by name", names(all))
	}
	if cur, _ := s.Revision(ctx(t)); rev != cur || rev != 4 {
		t.Fatalf("list revision %d, store revision %d, want 4", rev, cur)
	}
	for sel, want := range map[string]string{
		"app=web":            "a,b",
		"app!=web":           "c",
		"tier":               "b",
		"!tier":              "a,c",
		"app=web,tier=front": "b",
		"app=none":           "",
	} {
		parsed, err := v1.ParseSelector(sel)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := s.List(ctx(t), v1.KindService, parsed)
		if err != nil {
			t.Fatal(err)
		}
		if names(got) != want {
			t.Errorf("list %q = %q, want %q", sel, names(got), want)
		}
	}
}

func names(objs []v1.Object) string {
	s := ""
	for i, o := range objs {
		if i > 0 {
			s += ","
		}
		s += o.GetMetadata().Name
	}
	return s
}

func testRevisions(t *testing.T, s store.Store) {
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	ch, err := s.Watch(wctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Create(ctx(t), Service(fmt.Sprintf("s%d", i), nil)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var prev int64
	for range n {
		ev := nextEvent(t, ch)
		if ev.Revision != prev+1 && prev != 0 {
			t.Fatalf("revision gap or reorder: %d after %d", ev.Revision, prev)
		}
		prev = ev.Revision
	}
}

// Package storetest is the conformance suite every store.Store implementation must pass: the
// in-memory store and the replicated raft store run the same tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Factory returns a fresh, empty store for one test; the suite closes it.
type Factory func(t *testing.T) store.Store

// Run runs the whole suite against stores from newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateWithResourceVersion", testCreateWithResourceVersion},
		{"InvalidRejected", testInvalidRejected},
		{"UpdateCAS", testUpdateCAS},
		{"GenerationOnlyOnSpecChange", testGeneration},
		{"SecretGenerationOnlyOnDataChange", testSecretGeneration},
		{"NoOpWriteKeepsRevision", testNoOp},
		{"StatusSeparateFromSpec", testStatusSeparate},
		{"StoreOwnedMetadata", testStoreOwnedMetadata},
		{"DeleteWithoutFinalizers", testDelete},
		{"DeleteWithFinalizers", testDeleteFinalizers},
		{"DeletePrecondition", testDeletePrecondition},
		{"ListSelectorAndRevision", testList},
		{"WatchOrderedFromRevision", testWatch},
		{"WatchAllKinds", testWatchAllKinds},
		{"WatchTooOld", testWatchTooOld},
		{"ConcurrentCAS", testConcurrentCAS},
		{"RevisionsStrictlyIncrease", testRevisions},
		{"UnknownFieldsFromNewerVersion", testUnknownFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// Service returns a valid Service named name.
func Service(name string, labels map[string]string) *v1.Service {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = name
	s.Metadata.Labels = labels
	s.Spec.Image = "registry.local/web:1"
	s.Spec.Ports = []v1.ServicePort{{Name: "http", ContainerPort: 8080}}
	s.Default()
	return s
}

func mustCreate(t *testing.T, s store.Store, o v1.Object) v1.Object {
	t.Helper()
	out, err := s.Create(ctx(t), o)
	if err != nil {
		t.Fatalf("create %s: %v", v1.KeyOf(o), err)
	}
	return out
}

func rv(t *testing.T, o v1.Object) int64 {
	t.Helper()
	n, err := strconv.ParseInt(o.GetMetadata().ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q is not a decimal revision", o.GetMetadata().ResourceVersion)
	}
	return n
}

func testCreateGet(t *testing.T, s store.Store) {
	in := Service("web", map[string]string{"app": "web"})
	out := mustCreate(t, s, in)
	md := out.GetMetadata()
	if md.UID == "" || md.Generation != 1 || md.CreationTimestamp == nil || md.ResourceVersion == "" {
		t.Fatalf("store-owned metadata not set: %+v", md)
	}
	got, err := s.Get(ctx(t), v1.KindService, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.(*v1.Service).Spec.Image != in.Spec.Image || got.GetMetadata().ResourceVersion != md.ResourceVersion {
		t.Fatalf("get returned %+v, want what was created", got)
	}
	// The returned object is the caller's: changing it changes nothing stored.
	got.(*v1.Service).Spec.Image = "changed"
	again, _ := s.Get(ctx(t), v1.KindService, "web")
	if again.(*v1.Service).Spec.Image != in.Spec.Image {
		t.Fatal("mutating a returned object changed the store")
	}
	if _, err := s.Get(ctx(t), v1.KindService, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx(t), v1.KindNode, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("kinds share a namespace: err = %v", err)
	}
}

func testCreateDuplicate(t *testing.T, s store.Store) {
	mustCreate(t, s, Service("web", nil))
	if _, err := s.Create(ctx(t), Service("web", nil)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("err = %v, want ErrAlreadyExists", err)
	}
}

func testCreateWithResourceVersion(t *testing.T, s store.Store) {
	in := Service("web", nil)
	in.Metadata.ResourceVersion = "7"
	if _, err := s.Create(ctx(t), in); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if _, err := s.Get(ctx(t), v1.KindService, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("refused create stored something")
	}
}

func testInvalidRejected(t *testing.T, s store.Store) {
	bad := Service("web", nil)
	bad.Spec.Ports[0].ContainerPort = 0
	_, err := s.Create(ctx(t), bad)
	var inv *v1.InvalidError
	if !errors.As(err, &inv) || inv.Errors[0].Field != "spec.ports[0].containerPort" {
		t.Fatalf("err = %v, want an InvalidError naming spec.ports[0].containerPort", err)
	}
	r0, _ := s.Revision(ctx(t))
	if r0 != 0 {
		t.Fatalf("revision %d after only a refused write", r0)
	}
}

func testUpdateCAS(t *testing.T, s store.Store) {
	created := mustCreate(t, s, Service("web", nil)).(*v1.Service)
	a := created.DeepCopyObject().(*v1.Service)
	a.Spec.Image = "registry.local/web:2"
	updated, err := s.Update(ctx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	b := created.DeepCopyObject().(*v1.Service) // still carries the old resourceVersion
	b.Spec.Image = "registry.local/web:3"
	if _, err := s.Update(ctx(t), b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}
	got, _ := s.Get(ctx(t), v1.KindService, "web")
	if got.(*v1.Service).Spec.Image != "registry.local/web:2" {
		t.Fatalf("stale update was applied: image %q", got.(*v1.Service).Spec.Image)
	}
	// Without a resourceVersion an update is last-writer-wins.
	c := updated.DeepCopyObject().(*v1.Service)
	c.Metadata.ResourceVersion = ""
	c.Spec.Image = "registry.local/web:4"
	if _, err := s.Update(ctx(t), c); err != nil {
		t.Fatalf("unconditional update: %v", err)
	}
	if _, err := s.Update(ctx(t), Service("missing", nil)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: err = %v, want ErrNotFound", err)
	}
}

func testGeneration(t *testing.T, s store.Store) {
	o := mustCreate(t, s, Service("web", nil)).(*v1.Service)
	o.Metadata.Labels = map[string]string{"tier": "front"}
	o2, err := s.Update(ctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if g := o2.GetMetadata().Generation; g != 1 {
		t.Fatalf("label change bumped generation to %d", g)
	}
	o3 := o2.DeepCopyObject().(*v1.Service)
	o3.Spec.Replicas = new(int32)
	*o3.Spec.Replicas = 3
	o4, err := s.Update(ctx(t), o3)
	if err != nil {
		t.Fatal(err)
	}
	if g := o4.GetMetadata().Generation; g != 2 {
		t.Fatalf("spec change: generation %d, want 2", g)
	}
	st := o4.DeepCopyObject().(*v1.Service)
	st.Status.ReadyReplicas = 3
	o5, err := s.UpdateStatus(ctx(t), st)
	if err != nil {
		t.Fatal(err)
	}
	if g := o5.GetMetadata().Generation; g != 2 {
		t.Fatalf("status change bumped generation to %d", g)
	}
}

// testSecretGeneration: the scheduler rolls the Services that reference a Secret when its
// uid or generation changes (spechash.SecretVersion), so a write of the same data (a new map,
// as every apply makes) or of metadata only must keep the generation, whatever the store does
// with the values underneath (sealing them included).
func testSecretGeneration(t *testing.T, s store.Store) {
	secret := func(data map[string]string, labels map[string]string) *v1.Secret {
		sec := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}}
		sec.Metadata.Name, sec.Metadata.Labels, sec.Spec.Data = "db", labels, data
		return sec
	}
	o := mustCreate(t, s, secret(map[string]string{"password": "p1", "user": "app"}, nil))
	for i, sec := range []*v1.Secret{
		secret(map[string]string{"user": "app", "password": "p1"}, nil),
		secret(map[string]string{"password": "p1", "user": "app"}, map[string]string{"team": "a"}),
	} {
		out, err := s.Update(ctx(t), sec)
		if err != nil {
			t.Fatal(err)
		}
		if g := out.GetMetadata().Generation; g != 1 || out.GetMetadata().UID != o.GetMetadata().UID {
			t.Fatalf("write %d of the same data: generation %d, uid %q (was %q)", i, g, out.GetMetadata().UID, o.GetMetadata().UID)
		}
	}
	out, err := s.Update(ctx(t), secret(map[string]string{"password": "p2", "user": "app"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if g := out.GetMetadata().Generation; g != 2 {
		t.Fatalf("a new value: generation %d, want 2", g)
	}
	got, err := s.Get(ctx(t), v1.KindSecret, "db")
	if err != nil {
		t.Fatal(err)
	}
	if g := got.GetMetadata().Generation; g != 2 || got.(*v1.Secret).Spec.Data["password"] != "p2" {
		t.Fatalf("read back: generation %d", g)
	}
}

func testNoOp(t *testing.T, s store.Store) {
	o := mustCreate(t, s, Service("web", nil))
	before, _ := s.Revision(ctx(t))
	same, err := s.Update(ctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := s.Revision(ctx(t))
	if after != before || same.GetMetadata().ResourceVersion != o.GetMetadata().ResourceVersion {
		t.Fatalf("no-op update consumed a revision: %d → %d", before, after)
	}
}

func testStatusSeparate(t *testing.T, s store.Store) {
	o := mustCreate(t, s, Service("web", nil)).(*v1.Service)
	// UpdateStatus ignores spec changes.
	st := o.DeepCopyObject().(*v1.Service)
	st.Spec.Image = "registry.local/other:9"
	st.Status.Replicas = 2
	st.Status.Conditions = []v1.Condition{{Type: v1.ServiceReady, Status: v1.ConditionTrue, Reason: v1.ReasonAllReplicasReady}}
	if _, err := s.UpdateStatus(ctx(t), st); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx(t), v1.KindService, "web")
	g := got.(*v1.Service)
	if g.Spec.Image != o.Spec.Image || g.Status.Replicas != 2 || len(g.Status.Conditions) != 1 {
		t.Fatalf("status update leaked into spec or was lost: spec.image=%q status=%+v", g.Spec.Image, g.Status)
	}
	// Update ignores status changes.
	up := g.DeepCopyObject().(*v1.Service)
	up.Status.Replicas = 99
	up.Spec.Image = "registry.local/web:2"
	if _, err := s.Update(ctx(t), up); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx(t), v1.KindService, "web")
	if got.(*v1.Service).Status.Replicas != 2 || got.(*v1.Service).Spec.Image != "registry.local/web:2" {
		t.Fatalf("spec update changed status or lost spec: %+v", got)
	}
	// Status updates are compare-and-swap too.
	stale := g.DeepCopyObject().(*v1.Service)
	stale.Status.Replicas = 5
	if _, err := s.UpdateStatus(ctx(t), stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale status update: err = %v, want ErrConflict", err)
	}
}

func testStoreOwnedMetadata(t *testing.T, s store.Store) {
	o := mustCreate(t, s, Service("web", nil)).(*v1.Service)
	forged := o.DeepCopyObject().(*v1.Service)
	forged.Metadata.UID = "forged"
	forged.Metadata.Generation = 42
	now := time.Now()
	forged.Metadata.DeletionTimestamp = &now
	forged.Spec.Image = "registry.local/web:2"
	out, err := s.Update(ctx(t), forged)
	if err != nil {
		t.Fatal(err)
	}
	md := out.GetMetadata()
	if md.UID != o.Metadata.UID || md.Generation != 2 || md.DeletionTimestamp != nil {
		t.Fatalf("client overrode store-owned metadata: %+v", md)
	}
}

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

func testConcurrentCAS(t *testing.T, s store.Store) {
	mustCreate(t, s, Service("counter", map[string]string{"n": "0"}))
	const workers, increments = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < increments; {
				o, err := s.Get(ctx(t), v1.KindService, "counter")
				if err != nil {
					errs <- err
					return
				}
				n, _ := strconv.Atoi(o.GetMetadata().Labels["n"])
				o.GetMetadata().Labels["n"] = strconv.Itoa(n + 1)
				_, err = s.Update(ctx(t), o)
				switch {
				case errors.Is(err, store.ErrConflict):
					continue
				case err != nil:
					errs <- err
					return
				}
				done++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	o, _ := s.Get(ctx(t), v1.KindService, "counter")
	if got := o.GetMetadata().Labels["n"]; got != strconv.Itoa(workers*increments) {
		t.Fatalf("counter = %s, want %d: a compare-and-swap lost an update", got, workers*increments)
	}
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

// MutationWriter writes a Mutation as a proposer logged it. Every store implements it, so the
// suite can write what a newer version would (an object with fields this one does not know),
// which the typed Store methods cannot express.
type MutationWriter interface {
	WriteMutation(ctx context.Context, m store.Mutation) (v1.Object, error)
}

// newerService is a Service as a newer version would encode it: fields this version does not
// know in spec, status and metadata, and at the top level.
const newerService = `{"apiVersion":"constellation/v1","kind":"Service","futureTop":1,` +
	`"metadata":{"name":"web","labels":{"app":"web"},"futureMeta":"x"},` +
	`"spec":{"image":"registry.local/web:1","replicas":1,"futureSpec":{"mode":"fast"}},` +
	`"status":{"futureStatus":[1,2]}}`

// During a rolling upgrade an older member reads objects a newer one wrote: reads are lenient
// on the storage path (strictness belongs to the API), so Get, List and Watch still work.
func testUnknownFields(t *testing.T, s store.Store) {
	w, ok := s.(MutationWriter)
	if !ok {
		t.Fatalf("%T does not implement storetest.MutationWriter", s)
	}
	ch, err := s.Watch(ctx(t), v1.KindService, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := store.Mutation{Op: store.OpCreate, Kind: v1.KindService, Name: "web", Object: []byte(newerService), Now: time.Now().UTC(), UID: store.NewUID()}
	created, err := w.WriteMutation(ctx(t), m)
	if err != nil {
		t.Fatalf("create of a newer version's object: %v", err)
	}
	if created.(*v1.Service).Spec.Image != "registry.local/web:1" {
		t.Fatalf("created %+v", created)
	}
	got, err := s.Get(ctx(t), v1.KindService, "web")
	if err != nil {
		t.Fatalf("get of a newer version's object: %v", err)
	}
	if got.(*v1.Service).Spec.Image != "registry.local/web:1" || got.GetMetadata().Labels["app"] != "web" {
		t.Fatalf("get returned %+v", got)
	}
	l, _, err := s.List(ctx(t), v1.KindService, v1.Selector{})
	if err != nil || len(l) != 1 {
		t.Fatalf("list of a newer version's object: %d objects, err %v", len(l), err)
	}
	if ev := nextEvent(t, ch); ev.Type != store.Added || ev.Object.GetMetadata().Name != "web" {
		t.Fatalf("watch event %+v", ev)
	}
	// An update that changes only a field this version does not know is a change (a newer
	// member sees one): it consumes a revision and bumps the generation on every member.
	before := rv(t, got)
	up := strings.Replace(newerService, `"mode":"fast"`, `"mode":"slow"`, 1)
	m = store.Mutation{Op: store.OpUpdate, Kind: v1.KindService, Name: "web", Object: []byte(up), Now: time.Now().UTC()}
	next, err := w.WriteMutation(ctx(t), m)
	if err != nil {
		t.Fatalf("update of a field this version does not know: %v", err)
	}
	if rv(t, next) <= before || next.GetMetadata().Generation != 2 {
		t.Fatalf("update of an unknown spec field: resourceVersion %s (was %d), generation %d; want a new revision and generation 2",
			next.GetMetadata().ResourceVersion, before, next.GetMetadata().Generation)
	}
	// This version's own writes of the object keep working.
	g := next.DeepCopyObject().(*v1.Service)
	g.Status.Replicas = 1
	if _, err := s.UpdateStatus(ctx(t), g); err != nil {
		t.Fatalf("status update of a newer version's object: %v", err)
	}
}

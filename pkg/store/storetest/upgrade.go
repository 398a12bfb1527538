package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

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

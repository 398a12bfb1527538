package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

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

package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/scheduler"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// schedulerUndo is the undo hook as pkg/agent wires it: the scheduler's RolloutUndoTo, its
// sentinel errors mapped to the store's (409 nothing to return to, 404 unknown revision).
func schedulerUndo(st store.Store) func(ctx context.Context, name string, rev int64) (v1.Object, error) {
	return func(ctx context.Context, name string, rev int64) (v1.Object, error) {
		if err := scheduler.RolloutUndoTo(ctx, st, name, rev); err != nil {
			if errors.Is(err, scheduler.ErrNoPreviousRevision) {
				return nil, fmt.Errorf("services/%s: %w: no previous revision to return to", name, store.ErrConflict)
			}
			if errors.Is(err, scheduler.ErrRevisionNotFound) {
				return nil, fmt.Errorf("services/%s: %w: %s", name, store.ErrNotFound, strings.TrimPrefix(err.Error(), "rollout undo services/"+name+": scheduler: "))
			}
			return nil, err
		}
		return st.Get(ctx, v1.KindService, name)
	}
}

// putWeb stores web at image web:3 with the history the scheduler would have written after
// rolling out web:1, web:2 and web:3: revisions 1 and 2 kept, 3 current.
func putWeb(t *testing.T, st store.Store) *v1.Service {
	t.Helper()
	ctx := context.Background()
	spec := func(image string) v1.ServiceSpec {
		s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"},
			Spec: v1.ServiceSpec{Image: image, Ports: []v1.ServicePort{{ContainerPort: 8080}}}}
		s.Default()
		return s.Spec
	}
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"}, Spec: spec("web:3")}
	o, err := st.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	s := o.(*v1.Service)
	rev := func(n int64, image string) v1.ServiceRevision {
		sp := spec(image)
		return v1.ServiceRevision{Revision: n, SpecHash: spechash.Of(&sp), Spec: sp}
	}
	r1, r2, r3 := rev(1, "web:1"), rev(2, "web:2"), rev(3, "web:3")
	s.Status.RevisionHistory = []v1.ServiceRevision{r1, r2}
	s.Status.PreviousRevision, s.Status.CurrentRevision = &r2, &r3
	o, err = st.UpdateStatus(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1.Service)
}

// TestUndoToRevision: POST .../undo?toRevision=N returns the Service to revision N of its
// history; no toRevision is the previous revision; an unknown revision is 404 naming the
// revisions kept; a bad value is 400 on the toRevision field and reaches nobody.
func TestUndoToRevision(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	ts, st := newServer(t, func(cfg *Config) {
		undo := schedulerUndo(cfg.Store)
		cfg.Undo = func(ctx context.Context, name string, rev int64) (v1.Object, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			return undo(ctx, name, rev)
		}
	})
	putWeb(t, st)
	ctx := context.Background()
	rev0, _ := st.Revision(ctx)

	for _, q := range []string{"abc", "-1", "1.5"} {
		code, out := do(t, ts, "POST", "/apis/v1/services/web/undo?toRevision="+q, "")
		if code != http.StatusBadRequest || out["field"] != "toRevision" || !strings.Contains(fmt.Sprint(out["error"]), "services/web: toRevision") {
			t.Errorf("toRevision=%s: %d %v", q, code, out)
		}
	}
	mu.Lock()
	if calls != 0 {
		t.Fatalf("bad toRevision reached the undo hook %d times", calls)
	}
	mu.Unlock()

	code, out := do(t, ts, "POST", "/apis/v1/services/web/undo?toRevision=9", "")
	if code != http.StatusNotFound || out["error"] != "services/web: not found: no such revision in the history: revision 9 (kept: 1, 2, 3 (current))" {
		t.Fatalf("unknown revision: %d %v", code, out)
	}
	if rev, _ := st.Revision(ctx); rev != rev0 {
		t.Fatalf("refused undos moved the store from revision %d to %d", rev0, rev)
	}

	code, out = do(t, ts, "POST", "/apis/v1/services/web/undo?toRevision=1", "")
	if code != http.StatusOK || out["spec"].(map[string]any)["image"] != "web:1" || out["metadata"].(map[string]any)["generation"].(float64) != 2 {
		t.Fatalf("toRevision=1: %d %v", code, out)
	}
	// Without toRevision: the previous revision (2).
	code, out = do(t, ts, "POST", "/apis/v1/services/web/undo", "")
	if code != http.StatusOK || out["spec"].(map[string]any)["image"] != "web:2" {
		t.Fatalf("undo: %d %v", code, out)
	}
	// The current revision: nothing to do, the Service as it is.
	code, out = do(t, ts, "POST", "/apis/v1/services/web/undo?toRevision=3", "")
	if code != http.StatusOK || out["spec"].(map[string]any)["image"] != "web:2" || out["metadata"].(map[string]any)["generation"].(float64) != 3 {
		t.Fatalf("toRevision=3 (current): %d %v", code, out)
	}
	if code, out := do(t, ts, "POST", "/apis/v1/services/nope/undo?toRevision=1", ""); code != http.StatusNotFound {
		t.Fatalf("unknown Service: %d %v", code, out)
	}

	// An agent without the hook says so.
	ts2, _ := newServer(t, nil)
	if code, out := do(t, ts2, "POST", "/apis/v1/services/web/undo?toRevision=1", ""); code != http.StatusNotFound || out["error"] != "rollout undo is not available on this agent" {
		t.Fatalf("no hook: %d %v", code, out)
	}
}

// raceStore is a store whose first Update of services/web is preceded by another writer's
// restart, as if `ctl rollout restart` landed between the API server's read and its write.
type raceStore struct {
	store.Store
	once sync.Once
	at   time.Time
}

func (r *raceStore) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	if obj.GetTypeMeta().Kind == v1.KindService && obj.GetMetadata().Name == "web" {
		var err error
		r.once.Do(func() {
			var o v1.Object
			if o, err = r.Store.Get(ctx, v1.KindService, "web"); err != nil {
				return
			}
			s := o.(*v1.Service)
			s.Spec.RestartedAt = &r.at
			_, err = r.Store.Update(ctx, s)
		})
		if err != nil {
			return nil, err
		}
	}
	return r.Store.Update(ctx, obj)
}

// TestPutKeepsRestartedAt: a Service PUT without spec.restartedAt keeps the stored one (no new
// generation for re-applying the original file), one with it replaces it; the caller's own
// resourceVersion stays its compare-and-swap; a restart racing the PUT is kept.
func TestPutKeepsRestartedAt(t *testing.T) {
	raced := time.Date(2026, 12, 2, 10, 0, 3, 0, time.UTC)
	var rs *raceStore
	ts, st := newServer(t, func(cfg *Config) {
		rs = &raceStore{Store: cfg.Store, at: raced}
		rs.once.Do(func() {}) // spent: no race until the test re-arms it below
		cfg.Store = rs
	})
	get := func() *v1.Service {
		t.Helper()
		o, err := st.Get(context.Background(), v1.KindService, "web")
		if err != nil {
			t.Fatal(err)
		}
		return o.(*v1.Service)
	}
	withRestart := func(body, at string) string {
		return strings.Replace(body, `"spec":{`, `"spec":{"restartedAt":"`+at+`",`, 1)
	}
	if code, out := do(t, ts, "PUT", "/apis/v1/services/web", web); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	if get().Spec.RestartedAt != nil {
		t.Fatal("restartedAt set on create")
	}
	code, out := do(t, ts, "PUT", "/apis/v1/services/web", withRestart(web, "2026-12-02T10:00:00Z"))
	if code != http.StatusOK || out["spec"].(map[string]any)["restartedAt"] != "2026-12-02T10:00:00Z" {
		t.Fatalf("restart: %d %v", code, out)
	}
	restarted := get()
	if restarted.Metadata.Generation != 2 {
		t.Fatalf("generation %d after the restart, want 2", restarted.Metadata.Generation)
	}

	// The original file again: restartedAt kept, nothing changed.
	code, out = do(t, ts, "PUT", "/apis/v1/services/web", web)
	again := get()
	if code != http.StatusOK || out["spec"].(map[string]any)["restartedAt"] != "2026-12-02T10:00:00Z" ||
		again.Metadata.Generation != 2 || again.Metadata.ResourceVersion != restarted.Metadata.ResourceVersion {
		t.Fatalf("re-apply: %d %v (generation %d rv %s)", code, out, again.Metadata.Generation, again.Metadata.ResourceVersion)
	}
	// A dry run shows the value a write would keep, and writes nothing.
	code, out = do(t, ts, "PUT", "/apis/v1/services/web?dryRun=true", strings.Replace(web, "web:1", "web:2", 1))
	if code != http.StatusOK || out["spec"].(map[string]any)["restartedAt"] != "2026-12-02T10:00:00Z" || get().Spec.Image != "registry.local/web:1" {
		t.Fatalf("dry run: %d %v", code, out)
	}
	// A changed file without restartedAt: the change lands, restartedAt stays.
	code, out = do(t, ts, "PUT", "/apis/v1/services/web", strings.Replace(web, "web:1", "web:2", 1))
	changed := get()
	if code != http.StatusOK || changed.Spec.Image != "registry.local/web:2" || changed.Spec.RestartedAt == nil ||
		!changed.Spec.RestartedAt.Equal(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)) || changed.Metadata.Generation != 3 {
		t.Fatalf("update: %d %v", code, out)
	}
	// The caller's own stale resourceVersion: 409, nothing written.
	stale := strings.Replace(web, `"name":"web",`, `"name":"web","resourceVersion":"1",`, 1)
	if code, out := do(t, ts, "PUT", "/apis/v1/services/web", strings.Replace(stale, "web:1", "web:3", 1)); code != http.StatusConflict {
		t.Fatalf("stale resourceVersion: %d %v", code, out)
	}
	if get().Spec.Image != "registry.local/web:2" {
		t.Fatal("a stale PUT was written")
	}

	// A restart lands between the server's read and its write: the write conflicts inside the
	// server, which reads again and keeps the newer restartedAt.
	rs.once = sync.Once{}
	code, out = do(t, ts, "PUT", "/apis/v1/services/web", strings.Replace(web, "web:1", "web:4", 1))
	final := get()
	if code != http.StatusOK || final.Spec.Image != "registry.local/web:4" || final.Spec.RestartedAt == nil || !final.Spec.RestartedAt.Equal(raced) {
		t.Fatalf("racing restart: %d %v, stored restartedAt %v image %s", code, out, final.Spec.RestartedAt, final.Spec.Image)
	}

	// Deleted and created again: a new object, no restartedAt.
	if code, _ := do(t, ts, "DELETE", "/apis/v1/services/web", ""); code != http.StatusOK {
		t.Fatal("delete")
	}
	if code, _ := do(t, ts, "PUT", "/apis/v1/services/web", web); code != http.StatusCreated || get().Spec.RestartedAt != nil {
		t.Fatalf("recreate: %d, restartedAt %v", code, get().Spec.RestartedAt)
	}
}

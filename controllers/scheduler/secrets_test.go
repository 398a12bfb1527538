package scheduler

import (
	"context"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

func secret(name string, data map[string]string) *v1.Secret {
	return &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.SecretSpec{Data: data}}
}

func withSecretEnv(svc *v1.Service, secret, key string, restart v1.SecretRestart) *v1.Service {
	svc.Spec.Env = append(svc.Spec.Env, v1.EnvVar{Name: "V", SecretRef: &v1.SecretKeyRef{Name: secret, Key: key, Restart: restart}})
	return svc
}

func putSecret(t *testing.T, st store.Store, s *v1.Secret) {
	t.Helper()
	if _, err := st.Get(context.Background(), v1.KindSecret, s.Metadata.Name); err == nil {
		_, err = st.Update(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := st.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// While Run runs, a Secret change wakes the Services that roll with it: nothing else would
// (the resync is minutes away), and they get a new revision; the others keep theirs.
func TestRunRollsOnSecretChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.NewMemory()
	addNode(t, st, "a")
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "a", Alive: true})
	s, err := New(Config{Store: st, View: view, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, st, secret("db", map[string]string{"password": "p1"}))
	putSecret(t, st, secret("other", map[string]string{"token": "t1"}))
	for _, svc := range []*v1.Service{
		withSecretEnv(service("web", 2), "db", "password", ""),
		withSecretEnv(service("batch", 1), "db", "password", v1.SecretRestartNever),
		withSecretEnv(service("api", 1), "other", "token", ""),
	} {
		if _, err := st.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	rev := func(name string) string {
		if r := getSvc(t, st, name).Status.CurrentRevision; r != nil {
			return r.SpecHash
		}
		return ""
	}
	eventually(t, "first revisions", func() bool { return rev("web") != "" && rev("batch") != "" && rev("api") != "" })
	// A barrier: the loop has one worker and a FIFO queue. Once a later change of another
	// Service is planned, the reconciles that web's and api's own status writes queued have run,
	// and only the Secret's change can wake them again.
	if _, err := st.Create(ctx, service("barrier", 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the barrier planned", func() bool { return rev("barrier") != "" })
	b := getSvc(t, st, "barrier")
	b.Spec.Replicas = new(int32)
	*b.Spec.Replicas = 2
	if _, err := st.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the barrier's update planned", func() bool { return len(getSvc(t, st, "barrier").Status.Assignments) == 2 })
	web, batch, api := rev("web"), rev("batch"), rev("api")
	if batch != spechash.Of(&getSvc(t, st, "batch").Spec) {
		t.Fatalf("batch (restart: never) revision %q carries Secret versions", batch)
	}

	putSecret(t, st, secret("db", map[string]string{"password": "p2"}))
	eventually(t, "web's new revision", func() bool { return rev("web") != web })
	for _, a := range getSvc(t, st, "web").Status.Assignments {
		if a.SpecHash != rev("web") && a.SpecHash != web {
			t.Fatalf("assignment %+v of neither revision", a)
		}
	}
	if got := rev("batch"); got != batch {
		t.Fatalf("batch (restart: never): revision %q, want %q", got, batch)
	}
	if got := rev("api"); got != api {
		t.Fatalf("api (another Secret): revision %q, want %q", got, api)
	}
}

// The scheduler's Secret cache holds keys and keyed digests of the values, no value.
func TestSecretVersionsBlankValues(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.NewMemory()
	putSecret(t, st, secret("db", map[string]string{"password": "hunter2"}))
	key := []byte("test key")
	src := secretVersions(st, key)
	objs, rev, err := src.List(ctx, v1.KindSecret, v1.Selector{})
	if err != nil || len(objs) != 1 {
		t.Fatalf("list: %v %v", objs, err)
	}
	if d := objs[0].(*v1.Secret).Spec.Data; len(d) != 1 || d["password"] != spechash.DataDigest(key, "db", "password", "hunter2") {
		t.Fatalf("listed data %v", map[string]string(d))
	}
	ch, err := src.Watch(ctx, v1.KindSecret, rev)
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, st, secret("db", map[string]string{"password": "hunter3", "user": "app"}))
	ev := <-ch
	sec := ev.Object.(*v1.Secret)
	if d := sec.Spec.Data; len(d) != 2 || d["password"] != spechash.DataDigest(key, "db", "password", "hunter3") || d["user"] != spechash.DataDigest(key, "db", "user", "app") {
		t.Fatalf("watched %v generation %d", map[string]string(d), sec.Metadata.Generation)
	}
	if o, _ := st.Get(ctx, v1.KindSecret, "db"); o.(*v1.Secret).Spec.Data["password"] != "hunter3" {
		t.Fatal("blanking modified the store's object")
	}
}

// A referenced Secret that is missing holds the revision while the spec stays the same; with a
// new spec it is part of the new revision (its replicas then fail with SecretNotFound on the
// node, as before).
func TestMissingSecretHoldsTheRevision(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	s, err := New(Config{Store: st, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, withSecretEnv(service("web", 1), "db", "password", "")); err != nil {
		t.Fatal(err)
	}
	rec := func() string {
		t.Helper()
		if _, err := s.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		return getSvc(t, st, "web").Status.CurrentRevision.SpecHash
	}
	missing := rec()
	putSecret(t, st, secret("db", map[string]string{"other": "x"})) // the key is still missing
	if got := rec(); got != missing {
		t.Fatalf("key missing: revision %q, want %q held", got, missing)
	}
	putSecret(t, st, secret("db", map[string]string{"password": "p1"}))
	present := rec()
	if present == missing {
		t.Fatal("the Secret's key appeared: no new revision")
	}
	o, _ := st.Get(ctx, v1.KindSecret, "db")
	if _, err := st.Delete(ctx, v1.KindSecret, "db", o.GetMetadata().ResourceVersion); err != nil {
		t.Fatal(err)
	}
	if got := rec(); got != present {
		t.Fatalf("Secret deleted: revision %q, want %q held", got, present)
	}
	upd := getSvc(t, st, "web")
	upd.Spec.Image = "echo:2"
	if _, err := st.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if got := rec(); spechash.SpecPart(got) != spechash.Of(&upd.Spec) {
		t.Fatalf("new spec while the Secret is missing: revision %q", got)
	}
	if prev := getSvc(t, st, "web").Status.PreviousRevision; prev == nil || prev.SpecHash != present {
		t.Fatalf("previous revision %+v, want %q", prev, present)
	}
}

// A rotation is a new current revision but not a new previous one: after an image update and a
// rotation, `rollout undo` still returns to the previous image, with the Secret as it is now.
func TestUndoAfterRotationReturnsToThePreviousSpec(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	addNode(t, st, "a")
	s, err := New(Config{Store: st, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, st, secret("db", map[string]string{"password": "p1"}))
	if _, err := st.Create(ctx, withSecretEnv(service("web", 1), "db", "password", "")); err != nil {
		t.Fatal(err)
	}
	rec := func() *v1.Service {
		t.Helper()
		if _, err := s.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		return getSvc(t, st, "web")
	}
	v1rev := rec().Status.CurrentRevision.SpecHash
	upd := getSvc(t, st, "web")
	upd.Spec.Image = "echo:2"
	if _, err := st.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	v2rev := rec().Status.CurrentRevision.SpecHash
	putSecret(t, st, secret("db", map[string]string{"password": "p2"}))
	got := rec()
	if cur := got.Status.CurrentRevision.SpecHash; cur == v2rev || spechash.SpecPart(cur) != spechash.SpecPart(v2rev) {
		t.Fatalf("after rotation: current %q, was %q", cur, v2rev)
	}
	if prev := got.Status.PreviousRevision; prev == nil || prev.SpecHash != v1rev {
		t.Fatalf("after rotation: previous %+v, want echo:1's %q", prev, v1rev)
	}
	if err := RolloutUndoTo(ctx, st, "web", 0); err != nil {
		t.Fatal(err)
	}
	got = rec()
	if got.Spec.Image != "echo:1" {
		t.Fatalf("undo went to %q", got.Spec.Image)
	}
	cur := got.Status.CurrentRevision.SpecHash
	if spechash.SpecPart(cur) != spechash.SpecPart(v1rev) || cur == v1rev {
		t.Fatalf("after undo: current %q: want echo:1's spec (%q) with the Secret as it is now", cur, v1rev)
	}
	if err := RolloutUndoTo(ctx, st, "web", 0); err != nil {
		t.Fatal(err)
	}
	if got := rec(); got.Spec.Image != "echo:2" {
		t.Fatalf("a second undo went to %q, want forward again to echo:2", got.Spec.Image)
	}
}

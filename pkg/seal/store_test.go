package seal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

const clusterSecret = "test-cluster-secret"

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newSealed(t *testing.T, inner store.Store) *Store {
	t.Helper()
	s, err := New(inner, clusterSecret, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func secret(name string, data map[string]string) *v1.Secret {
	s := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}}
	s.Metadata.Name = name
	s.Spec.Data = data
	return s
}

// rawSecret is what the wrapped store holds.
func rawSecret(t *testing.T, s *Store, name string) *v1.Secret {
	t.Helper()
	o, err := s.Inner().Get(ctxT(t), v1.KindSecret, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1.Secret)
}

func assertSealed(t *testing.T, s *Store, name, value string) *v1.Secret {
	t.Helper()
	raw := rawSecret(t, s, name)
	if raw.Spec.Sealed == nil || len(raw.Spec.Data) != 0 {
		t.Fatalf("secrets/%s is not sealed in the underlying store (sealed=%v, %d plaintext keys)", name, raw.Spec.Sealed != nil, len(raw.Spec.Data))
	}
	b, _ := json.Marshal(raw)
	if strings.Contains(string(b), value) {
		t.Fatalf("secrets/%s: the underlying store holds the value", name)
	}
	return raw
}

func wantValue(t *testing.T, o v1.Object, key, value string) {
	t.Helper()
	sec, ok := o.(*v1.Secret)
	if !ok {
		t.Fatalf("got %T", o)
	}
	if sec.Spec.Sealed != nil || sec.Spec.Data[key] != value {
		t.Fatalf("secrets/%s: key %q is not the plaintext value (sealed=%v)", sec.Metadata.Name, key, sec.Spec.Sealed != nil)
	}
}

// The wrapper keeps every store semantic: it passes the store conformance suite.
func TestConformanceOverMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newSealed(t, store.NewMemory()) })
}

func TestReadersSeePlaintextStoreHoldsNone(t *testing.T) {
	ctx := ctxT(t)
	s := newSealed(t, store.NewMemory())
	defer s.Close()
	ch, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Create(ctx, secret("db", map[string]string{"password": "pw-one-77"}))
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, created, "password", "pw-one-77")
	assertSealed(t, s, "db", "pw-one-77")

	got, err := s.Get(ctx, v1.KindSecret, "db")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "password", "pw-one-77")
	got, err = s.Get(ctx, v1.KindSecret, "db", store.Stale())
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "password", "pw-one-77")
	list, _, err := s.List(ctx, v1.KindSecret, v1.Selector{})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	wantValue(t, list[0], "password", "pw-one-77")
	ev := nextSecretEvent(t, ch)
	if ev.Type != store.Added {
		t.Fatalf("event %s", ev.Type)
	}
	wantValue(t, ev.Object, "password", "pw-one-77")

	// Same values again: not a change (no generation bump, no revision consumed).
	upd := got.DeepCopyObject().(*v1.Secret)
	same, err := s.Update(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if same.GetMetadata().ResourceVersion != got.GetMetadata().ResourceVersion || same.GetMetadata().Generation != 1 {
		t.Fatalf("an update with the same values changed the object: rv %s→%s, generation %d",
			got.GetMetadata().ResourceVersion, same.GetMetadata().ResourceVersion, same.GetMetadata().Generation)
	}
	// New values: a change.
	upd.Spec.Data["password"] = "pw-two-88"
	changed, err := s.Update(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if changed.GetMetadata().Generation != 2 {
		t.Fatalf("generation %d after a value change, want 2", changed.GetMetadata().Generation)
	}
	wantValue(t, changed, "password", "pw-two-88")
	assertSealed(t, s, "db", "pw-two-88")
	ev = nextSecretEvent(t, ch)
	if ev.Type != store.Modified {
		t.Fatalf("event %s", ev.Type)
	}
	wantValue(t, ev.Object, "password", "pw-two-88")

	// A status write carries no values into the store's log, and returns plaintext.
	st, err := s.UpdateStatus(ctx, changed)
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, st, "password", "pw-two-88")

	del, err := s.Delete(ctx, v1.KindSecret, "db", "")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, del, "password", "pw-two-88")
	ev = nextSecretEvent(t, ch)
	if ev.Type != store.Deleted {
		t.Fatalf("event %s", ev.Type)
	}
	wantValue(t, ev.Object, "password", "pw-two-88")
}

func nextSecretEvent(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("watch closed")
			}
			if ev.Type == store.Error {
				t.Fatalf("watch error: %v", ev.Err)
			}
			if ev.Object.GetTypeMeta().Kind == v1.KindSecret {
				return ev
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
	}
}

func TestClientSealedRefused(t *testing.T) {
	s := newSealed(t, store.NewMemory())
	defer s.Close()
	in := secret("db", nil)
	in.Spec.Sealed = &v1.SealedData{KeyID: "dk-x", Nonce: make([]byte, 12), Ciphertext: make([]byte, 32)}
	_, err := s.Create(ctxT(t), in)
	var inv *v1.InvalidError
	if !errors.As(err, &inv) || inv.Errors[0].Field != "spec.sealed" {
		t.Fatalf("err = %v, want an InvalidError on spec.sealed", err)
	}
}

func TestInvalidSecretNamesDataKey(t *testing.T) {
	s := newSealed(t, store.NewMemory())
	defer s.Close()
	_, err := s.Create(ctxT(t), secret("db", map[string]string{"bad key": "v"}))
	var inv *v1.InvalidError
	if !errors.As(err, &inv) || !strings.HasPrefix(inv.Errors[0].Field, "spec.data") {
		t.Fatalf("err = %v, want an InvalidError on spec.data", err)
	}
}

// An unknown key ID is an error naming the Secret; after a refresh a key added elsewhere is
// found.
func TestUnknownKey(t *testing.T) {
	ctx := ctxT(t)
	mem := store.NewMemory()
	a := newSealed(t, mem)
	b := newSealed(t, mem) // another member, same replicated store
	if _, err := a.Create(ctx, secret("db", map[string]string{"k": "v1"})); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, v1.KindSecret, "db"); err != nil { // b caches the keyring
		t.Fatal(err)
	}
	if _, err := a.Rotate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// b's cached keyring lacks the new key: it re-reads the keyring.
	got, err := b.Get(ctx, v1.KindSecret, "db")
	if err != nil {
		t.Fatalf("a member with a stale keyring: %v", err)
	}
	wantValue(t, got, "k", "v1")

	// A value sealed under a key that is nowhere: a clear error, no value.
	raw := rawSecret(t, a, "db")
	raw.Spec.Sealed.KeyID = "dk-gone"
	if _, err := mem.Update(ctx, raw); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func() error{
		func() error { _, err := b.Get(ctx, v1.KindSecret, "db"); return err },
		func() error { _, _, err := b.List(ctx, v1.KindSecret, v1.Selector{}); return err },
	} {
		err := read()
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "secrets/db") || !strings.Contains(err.Error(), "dk-gone") {
			t.Fatalf("err = %v, want ErrUnknownKey naming secrets/db and the key", err)
		}
	}
}

func TestWatchEndsOnUnsealFailure(t *testing.T) {
	ctx := ctxT(t)
	mem := store.NewMemory()
	s := newSealed(t, mem)
	if _, err := s.Create(ctx, secret("db", map[string]string{"k": "v"})); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, v1.KindSecret, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw := rawSecret(t, s, "db")
	raw.Spec.Sealed.Ciphertext[0] ^= 1
	if _, err := mem.Update(ctx, raw); err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.Type != store.Error || !errors.Is(ev.Err, ErrOpen) || !strings.Contains(ev.Err.Error(), "secrets/db") {
		t.Fatalf("event %s %v, want an Error naming secrets/db", ev.Type, ev.Err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("watch still open after its Error event")
	}
}

func TestWrongClusterSecret(t *testing.T) {
	ctx := ctxT(t)
	mem := store.NewMemory()
	if _, err := newSealed(t, mem).Create(ctx, secret("db", map[string]string{"k": "v"})); err != nil {
		t.Fatal(err)
	}
	other, err := New(mem, "another-secret", quiet())
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Get(ctx, v1.KindSecret, "db")
	if !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), "cluster secret") {
		t.Fatalf("err = %v, want a keyring that cannot be unwrapped", err)
	}
}

func TestMigratePlaintext(t *testing.T) {
	ctx := ctxT(t)
	mem := store.NewMemory()
	for i := range 3 {
		if _, err := mem.Create(ctx, secret(fmt.Sprintf("old%d", i), map[string]string{"k": fmt.Sprintf("legacy-%d", i)})); err != nil {
			t.Fatal(err)
		}
	}
	s := newSealed(t, mem)
	// Before migration a plaintext Secret still reads.
	got, err := s.Get(ctx, v1.KindSecret, "old0")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "k", "legacy-0")
	n, err := s.Migrate(ctx)
	if err != nil || n != 3 {
		t.Fatalf("migrate: %d, %v", n, err)
	}
	for i := range 3 {
		name := fmt.Sprintf("old%d", i)
		assertSealed(t, s, name, fmt.Sprintf("legacy-%d", i))
		got, err := s.Get(ctx, v1.KindSecret, name)
		if err != nil {
			t.Fatal(err)
		}
		wantValue(t, got, "k", fmt.Sprintf("legacy-%d", i))
	}
	if n, err := s.Migrate(ctx); err != nil || n != 0 {
		t.Fatalf("second migrate: %d, %v", n, err)
	}
}

func keyring(t *testing.T, s *Store) *v1.Keyring {
	t.Helper()
	o, err := s.Inner().Get(ctxT(t), v1.KindKeyring, v1.KeyringName)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1.Keyring)
}

func TestRotate(t *testing.T) {
	ctx := ctxT(t)
	s := newSealed(t, store.NewMemory())
	const n = 5
	for i := range n {
		if _, err := s.Create(ctx, secret(fmt.Sprintf("s%d", i), map[string]string{"k": fmt.Sprintf("value-%d", i)})); err != nil {
			t.Fatal(err)
		}
	}
	old := keyring(t, s).Spec.ActiveKeyID
	var last Progress
	calls := 0
	res, err := s.Rotate(ctx, func(p Progress) { last = p; calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if res.ActiveKeyID == old || res.Resealed != n || res.Secrets != n || res.Resumed || len(res.Dropped) != 1 || res.Dropped[0] != old {
		t.Fatalf("result %+v (old key %s)", res, old)
	}
	if calls != n || last.Done != n || last.Total != n {
		t.Fatalf("progress: %d calls, last %+v", calls, last)
	}
	kr := keyring(t, s)
	if kr.Spec.ActiveKeyID != res.ActiveKeyID || len(kr.Spec.Keys) != 1 || kr.Spec.Keys[0].ID != res.ActiveKeyID {
		t.Fatalf("keyring after rotation: active %s, %d keys", kr.Spec.ActiveKeyID, len(kr.Spec.Keys))
	}
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		if raw := assertSealed(t, s, name, fmt.Sprintf("value-%d", i)); raw.Spec.Sealed.KeyID != res.ActiveKeyID {
			t.Fatalf("%s sealed under %s, want %s", name, raw.Spec.Sealed.KeyID, res.ActiveKeyID)
		}
		got, err := s.Get(ctx, v1.KindSecret, name)
		if err != nil {
			t.Fatal(err)
		}
		wantValue(t, got, "k", fmt.Sprintf("value-%d", i))
	}
	// A fresh member (empty cache) reads them too.
	got, err := newSealed(t, s.Inner()).Get(ctx, v1.KindSecret, "s0")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "k", "value-0")
}

// A rotation interrupted after adding its key and sealing only part of the Secrets is finished
// by the next run, which adds no key.
func TestRotateResumes(t *testing.T) {
	ctx := ctxT(t)
	s := newSealed(t, store.NewMemory())
	for i := range 4 {
		if _, err := s.Create(ctx, secret(fmt.Sprintf("s%d", i), map[string]string{"k": fmt.Sprintf("value-%d", i)})); err != nil {
			t.Fatal(err)
		}
	}
	old := keyring(t, s).Spec.ActiveKeyID
	var res RotateResult
	r, err := s.addActiveKey(ctx, &res)
	if err != nil {
		t.Fatal(err)
	}
	need := func(sd *v1.SealedData) bool { return sd.KeyID != r.active }
	if _, err := s.resealOne(ctx, r, "s1", need); err != nil { // then the "crash"
		t.Fatal(err)
	}
	// A write in between is sealed under the new key.
	if _, err := s.Update(ctx, secret("s2", map[string]string{"k": "value-2b"})); err != nil {
		t.Fatal(err)
	}
	if id := rawSecret(t, s, "s2").Spec.Sealed.KeyID; id != r.active {
		t.Fatalf("a write during the rotation sealed under %s, want the new %s", id, r.active)
	}
	res, err = s.Rotate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.ActiveKeyID != r.active || res.Resealed != 2 || len(res.Dropped) != 1 || res.Dropped[0] != old {
		t.Fatalf("resumed rotation %+v, want the interrupted one finished (key %s, 2 resealed, %s dropped)", res, r.active, old)
	}
	if kr := keyring(t, s); len(kr.Spec.Keys) != 1 {
		t.Fatalf("%d keys left", len(kr.Spec.Keys))
	}
	got, err := s.Get(ctx, v1.KindSecret, "s2")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "k", "value-2b")
}

// A member whose cached keyring is stale when it writes (another member rotated meanwhile)
// ends up sealed under the new active key, so the old key can be dropped.
func TestWriteAfterRotationElsewhere(t *testing.T) {
	ctx := ctxT(t)
	mem := store.NewMemory()
	a, b := newSealed(t, mem), newSealed(t, mem)
	if _, err := a.Create(ctx, secret("db", map[string]string{"k": "v"})); err != nil {
		t.Fatal(err)
	}
	res, err := a.Rotate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, secret("db", map[string]string{"k": "v2"})); err != nil {
		t.Fatal(err)
	}
	if id := rawSecret(t, a, "db").Spec.Sealed.KeyID; id != res.ActiveKeyID {
		t.Fatalf("sealed under %s, want %s", id, res.ActiveKeyID)
	}
}

// confirm re-seals a write that landed under a key that stopped being active meanwhile.
func TestConfirmResealsUnderNewActive(t *testing.T) {
	ctx := ctxT(t)
	s := newSealed(t, store.NewMemory())
	if _, err := s.Create(ctx, secret("db", map[string]string{"k": "v"})); err != nil {
		t.Fatal(err)
	}
	old := rawSecret(t, s, "db").Spec.Sealed.KeyID
	var res RotateResult
	r, err := s.addActiveKey(ctx, &res) // the rotation on "another member" made a new key active
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Inner().Get(ctx, v1.KindSecret, "db")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.confirm(ctx, stored.(*v1.Secret), v1.SecretData{"k": "v"}, old); err != nil {
		t.Fatal(err)
	}
	if id := rawSecret(t, s, "db").Spec.Sealed.KeyID; id != r.active {
		t.Fatalf("after confirm sealed under %s, want %s", id, r.active)
	}
}

// A keyring wrapped under an earlier cluster secret still opens with WithPreviousSecrets, and
// Migrate wraps it again under the current one.
func TestPreviousClusterSecret(t *testing.T) {
	ctx := ctxT(t)
	mem := store.NewMemory()
	old, err := New(mem, "old-cluster-secret", quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Create(ctx, secret("db", map[string]string{"k": "v"})); err != nil {
		t.Fatal(err)
	}
	if _, err := newSealed(t, mem).Get(ctx, v1.KindSecret, "db"); !errors.Is(err, ErrOpen) {
		t.Fatalf("without the previous secret: %v, want ErrOpen", err)
	}
	s, err := New(mem, clusterSecret, quiet(), WithPreviousSecrets("old-cluster-secret"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, v1.KindSecret, "db")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "k", "v")
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Now a member with only the current secret reads it.
	got, err = newSealed(t, mem).Get(ctx, v1.KindSecret, "db")
	if err != nil {
		t.Fatalf("after re-wrap: %v", err)
	}
	wantValue(t, got, "k", "v")
}

// Run seals what an older agent writes in plaintext past the wrapper, for as long as it runs.
func TestRunSealsPlaintextWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(ctxT(t))
	mem := store.NewMemory()
	if _, err := mem.Create(ctx, secret("before", map[string]string{"k": "plain-before"})); err != nil {
		t.Fatal(err)
	}
	s := newSealed(t, mem)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitSealed := func(name string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			o, err := mem.Get(ctx, v1.KindSecret, name)
			if err == nil && o.(*v1.Secret).Spec.Sealed != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("secrets/%s never sealed", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSealed("before")
	if _, err := mem.Create(ctx, secret("after", map[string]string{"k": "plain-after"})); err != nil {
		t.Fatal(err)
	}
	waitSealed("after")
	assertSealed(t, s, "after", "plain-after")
	got, err := s.Get(ctx, v1.KindSecret, "after")
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, got, "k", "plain-after")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

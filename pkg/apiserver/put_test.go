package apiserver

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// writeCounter counts the writes that reach the store: each one, refused or not, is a raft
// entry the size of the object in a replicated store.
type writeCounter struct {
	store.Store
	mu     sync.Mutex
	writes []string
	// staleMiss makes stale reads answer "not found", as a member that has not applied the
	// create yet would.
	staleMiss bool
}

func (w *writeCounter) note(op string) {
	w.mu.Lock()
	w.writes = append(w.writes, op)
	w.mu.Unlock()
}

func (w *writeCounter) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	if w.staleMiss && store.ApplyReadOptions(opts).Stale {
		return nil, store.ErrNotFound
	}
	return w.Store.Get(ctx, kind, name, opts...)
}

func (w *writeCounter) Create(ctx context.Context, obj v1.Object) (v1.Object, error) {
	w.note("create")
	return w.Store.Create(ctx, obj)
}

func (w *writeCounter) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	w.note("update")
	return w.Store.Update(ctx, obj)
}

func (w *writeCounter) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.writes, ",")
	w.writes = nil
	return s
}

// A PUT costs one write: a create of a new object is not preceded by an update the store
// refuses (which cost a full-size raft entry per new object), and an update of an existing one
// is not preceded by a create. A stale guess costs one extra write and still lands.
func TestPutWritesOnce(t *testing.T) {
	wc := &writeCounter{Store: store.NewMemory()}
	ts, _ := newServer(t, func(c *Config) { c.Store = wc })
	const sec = `{"apiVersion":"constellation/v1","kind":"Secret","metadata":{"name":"s"},"spec":{"data":{"k":"%s"}}}`
	put := func(v string) int {
		code, out := do(t, ts, "PUT", "/apis/v1/secrets/s", strings.Replace(sec, "%s", v, 1))
		if code >= 300 {
			t.Fatalf("PUT: %d %v", code, out)
		}
		return code
	}
	if code := put("1"); code != http.StatusCreated {
		t.Fatalf("first PUT: %d", code)
	}
	if got := wc.take(); got != "create" {
		t.Fatalf("first PUT wrote %q, want create", got)
	}
	if code := put("2"); code != http.StatusOK {
		t.Fatalf("second PUT: %d", code)
	}
	if got := wc.take(); got != "update" {
		t.Fatalf("second PUT wrote %q, want update", got)
	}
	wc.staleMiss = true // the local member has not seen the object yet
	if code := put("3"); code != http.StatusOK {
		t.Fatalf("PUT after a stale miss: %d", code)
	}
	if got := wc.take(); got != "create,update" {
		t.Fatalf("PUT after a stale miss wrote %q, want create,update", got)
	}
	got, err := wc.Store.Get(context.Background(), v1.KindSecret, "s")
	if err != nil {
		t.Fatal(err)
	}
	if v := got.(*v1.Secret).Spec.Data["k"]; v != "3" {
		t.Fatalf("stored value %q, want 3", v)
	}
}

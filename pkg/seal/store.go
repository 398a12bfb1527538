package seal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is a store.Store whose Secrets are sealed in the store it wraps and plaintext to its
// callers. Other kinds pass through untouched.
type Store struct {
	inner store.Store
	kek   []byte
	log   *slog.Logger
	now   func() time.Time // only stamps keys' creation time
	// previous are KEKs of earlier cluster secrets, tried when the current one fails.
	previous [][]byte

	mu sync.Mutex
	// guarded by mu:
	ring *ring // the last keyring read; nil before the first
}

var _ store.Store = (*Store)(nil)

// Option tunes New.
type Option func(*Store) error

// WithPreviousSecrets accepts a keyring wrapped under earlier cluster secrets (the cluster
// secret was changed): such keys still unwrap, and Migrate (hence Run) wraps them again under
// the current secret. Pass it until every member runs with the new secret.
func WithPreviousSecrets(secrets ...string) Option {
	return func(s *Store) error {
		for _, sec := range secrets {
			k, err := DeriveKEK(sec)
			if err != nil {
				return fmt.Errorf("previous cluster secret: %w", err)
			}
			s.previous = append(s.previous, k)
		}
		return nil
	}
}

// New wraps inner. clusterSecret is the cluster (peer) secret every member holds: the keyring's
// key-encryption key derives from it, so every member must pass the same one.
func New(inner store.Store, clusterSecret string, log *slog.Logger, opts ...Option) (*Store, error) {
	kek, err := DeriveKEK(clusterSecret)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Store{inner: inner, kek: kek, log: log.With("component", "seal"), now: time.Now}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Inner returns the wrapped store, which holds Secrets sealed.
func (s *Store) Inner() store.Store { return s.inner }

// unseal replaces sec's sealed values by their plaintext, in place. A Secret without
// spec.sealed (written before sealing existed, not yet migrated) is left as it is.
func (s *Store) unseal(ctx context.Context, sec *v1.Secret) error {
	sd := sec.Spec.Sealed
	if sd == nil {
		return nil
	}
	name := sec.Metadata.Name
	if err := checkShape(sd); err != nil {
		return fmt.Errorf("secrets/%s: spec.sealed: %w", name, err)
	}
	key, err := s.keyFor(ctx, name, sd.KeyID)
	if err != nil {
		return err
	}
	data, err := OpenData(key, name, sd)
	if err != nil {
		return err
	}
	sec.Spec.Data, sec.Spec.Sealed = data, nil
	return nil
}

func (s *Store) unsealObject(ctx context.Context, o v1.Object) (v1.Object, error) {
	if sec, ok := o.(*v1.Secret); ok {
		if err := s.unseal(ctx, sec); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// sealed returns the copy of sec that is stored: spec.data sealed under the active key. reuse,
// when it is sealed under the active key and holds the same values, is kept as it is, so that
// writing unchanged values changes no byte (no generation bump, no revision consumed).
func (s *Store) sealed(ctx context.Context, sec *v1.Secret, reuse *v1.SealedData) (*v1.Secret, string, error) {
	name := sec.Metadata.Name
	if sec.Spec.Sealed != nil {
		return nil, "", v1.ErrorList{{Field: "spec.sealed", Message: "is set by the store, not by clients: send spec.data"}}.ToAggregate("secrets", name)
	}
	// Validate the plaintext here, so that errors name spec.data's keys.
	if errs := sec.Validate(); len(errs) > 0 {
		return nil, "", errs.ToAggregate("secrets", name)
	}
	r, _, err := s.ensureRing(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("secrets/%s: seal: %w", name, err)
	}
	out := &v1.Secret{TypeMeta: sec.TypeMeta, Metadata: sec.Metadata, Status: sec.Status}
	if reuse != nil && reuse.KeyID == r.active {
		if old, err := OpenData(r.keys[r.active], name, reuse); err == nil && maps.Equal(old, sec.Spec.Data) {
			out.Spec.Sealed = reuse
			return out, r.active, nil
		}
	}
	sd, err := SealData(r.keys[r.active], r.active, name, sec.Spec.Data)
	if err != nil {
		return nil, "", err
	}
	out.Spec.Sealed = sd
	return out, r.active, nil
}

// plain is what a write returns to its caller: the stored object with the caller's values.
func plain(stored v1.Object, data v1.SecretData) v1.Object {
	sec := stored.(*v1.Secret)
	sec.Spec.Sealed = nil
	sec.Spec.Data = maps.Clone(data)
	return sec
}

// confirm closes the race with a rotation on another member: a write sealed under a key that
// stopped being active meanwhile could otherwise land after that rotation's last sweep, and its
// key be dropped. The keyring is read again, linearizably, after the write; a new active key
// means the write is sealed again under it (compare-and-swap: a newer write by someone else
// does its own check).
func (s *Store) confirm(ctx context.Context, out *v1.Secret, data v1.SecretData, used string) (*v1.Secret, error) {
	name := out.Metadata.Name
	for range 5 {
		r, _, err := s.readRing(ctx)
		if err != nil {
			return nil, fmt.Errorf("secrets/%s: written, but the keyring could not be read again to check the seal (write it again): %w", name, err)
		}
		if r.active == used {
			return out, nil
		}
		sd, err := SealData(r.keys[r.active], r.active, name, data)
		if err != nil {
			return nil, err
		}
		upd := &v1.Secret{TypeMeta: out.TypeMeta, Metadata: out.Metadata, Spec: v1.SecretSpec{Sealed: sd}}
		res, err := s.inner.Update(ctx, upd)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("secrets/%s: written, but sealing it again under the new data key %q failed (write it again): %w", name, r.active, err)
		}
		out, used = res.(*v1.Secret), r.active
	}
	return out, nil
}

// Get returns one object; a Secret with its values in plaintext.
func (s *Store) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	o, err := s.inner.Get(ctx, kind, name, opts...)
	if err != nil {
		return nil, err
	}
	return s.unsealObject(ctx, o)
}

// List returns the objects of a kind; Secrets with their values in plaintext. A Secret that
// cannot be unsealed fails the whole list, with an error naming it.
func (s *Store) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	objs, rev, err := s.inner.List(ctx, kind, sel, opts...)
	if err != nil || kind != v1.KindSecret {
		return objs, rev, err
	}
	for _, o := range objs {
		if _, err := s.unsealObject(ctx, o); err != nil {
			return nil, 0, err
		}
	}
	return objs, rev, nil
}

// Create stores a new object; a Secret sealed.
func (s *Store) Create(ctx context.Context, obj v1.Object) (v1.Object, error) {
	sec, ok := obj.(*v1.Secret)
	if !ok {
		return s.inner.Create(ctx, obj)
	}
	in, used, err := s.sealed(ctx, sec, nil)
	if err != nil {
		return nil, err
	}
	out, err := s.inner.Create(ctx, in)
	if err != nil {
		return nil, err
	}
	if out, err = s.confirm(ctx, out.(*v1.Secret), sec.Spec.Data, used); err != nil {
		return nil, err
	}
	return plain(out, sec.Spec.Data), nil
}

// Update replaces metadata and spec; a Secret's values sealed.
func (s *Store) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	sec, ok := obj.(*v1.Secret)
	if !ok {
		return s.inner.Update(ctx, obj)
	}
	var reuse *v1.SealedData
	if cur, err := s.inner.Get(ctx, v1.KindSecret, sec.Metadata.Name, store.Stale()); err == nil {
		reuse = cur.(*v1.Secret).Spec.Sealed
	}
	in, used, err := s.sealed(ctx, sec, reuse)
	if err != nil {
		return nil, err
	}
	out, err := s.inner.Update(ctx, in)
	if err != nil {
		return nil, err
	}
	if out, err = s.confirm(ctx, out.(*v1.Secret), sec.Spec.Data, used); err != nil {
		return nil, err
	}
	return plain(out, sec.Spec.Data), nil
}

// UpdateStatus replaces status only. A Secret's values are not sent at all: the store ignores
// spec on a status write, but would still carry it into its log.
func (s *Store) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	if sec, ok := obj.(*v1.Secret); ok {
		obj = &v1.Secret{TypeMeta: sec.TypeMeta, Metadata: sec.Metadata, Status: sec.Status}
	}
	out, err := s.inner.UpdateStatus(ctx, obj)
	if err != nil {
		return nil, err
	}
	return s.unsealObject(ctx, out)
}

// Delete removes an object. The Secret it returns (the last state) has no values when they
// cannot be unsealed: the deletion happened, and nothing reads them.
func (s *Store) Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error) {
	out, err := s.inner.Delete(ctx, kind, name, resourceVersion)
	if err != nil {
		return nil, err
	}
	if sec, ok := out.(*v1.Secret); ok {
		if err := s.unseal(ctx, sec); err != nil {
			s.log.Warn("deleted a Secret whose values cannot be unsealed", "secret", name, "err", err)
			sec.Spec.Data, sec.Spec.Sealed = nil, nil
		}
	}
	return out, nil
}

// Watch streams changes; Secrets with their values in plaintext. A Secret that cannot be
// unsealed ends the watch with an Error event naming it (a watcher re-lists, and the list says
// the same): a value is never passed on sealed or empty as if it were the Secret's.
func (s *Store) Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error) {
	if kind != "" && kind != v1.KindSecret {
		return s.inner.Watch(ctx, kind, fromRev)
	}
	wctx, cancel := context.WithCancel(ctx)
	in, err := s.inner.Watch(wctx, kind, fromRev)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan store.Event)
	go func() {
		defer close(out)
		defer func() {
			cancel()
			for range in { // let the inner watch wind down
			}
		}()
		for ev := range in {
			if ev.Object != nil {
				if _, err := s.unsealObject(ctx, ev.Object); err != nil {
					ev = store.Event{Type: store.Error, Revision: ev.Revision, Err: err}
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Type == store.Error {
				return
			}
		}
	}()
	return out, nil
}

// Revision returns the latest applied revision.
func (s *Store) Revision(ctx context.Context) (int64, error) { return s.inner.Revision(ctx) }

// Compact forgets watch history up to and including rev.
func (s *Store) Compact(ctx context.Context, rev int64) error { return s.inner.Compact(ctx, rev) }

// Close closes the wrapped store.
func (s *Store) Close() error { return s.inner.Close() }

// mutationWriter is what both stores implement for writing a Mutation as a proposer logged it.
type mutationWriter interface {
	WriteMutation(ctx context.Context, m store.Mutation) (v1.Object, error)
}

// WriteMutation passes a raw Mutation through, for kinds other than Secret: a Secret's values
// are only sealed from typed writes.
func (s *Store) WriteMutation(ctx context.Context, m store.Mutation) (v1.Object, error) {
	w, ok := s.inner.(mutationWriter)
	if !ok {
		return nil, fmt.Errorf("seal: %T cannot write raw mutations", s.inner)
	}
	if m.Kind == v1.KindSecret {
		return nil, fmt.Errorf("seal: secrets/%s: raw mutations of Secrets are refused (their values would not be sealed)", m.Name)
	}
	return w.WriteMutation(ctx, m)
}

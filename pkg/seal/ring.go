package seal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// ring is the keyring unwrapped: usable keys, never written anywhere.
type ring struct {
	rv     string // the Keyring object's resourceVersion
	active string
	keys   map[string][]byte
	ids    []string // in the Keyring's order
	// oldWrap: some key is wrapped under a previous cluster secret (WithPreviousSecrets).
	oldWrap bool
}

func (r *ring) key(id string) ([]byte, bool) {
	if r == nil {
		return nil, false
	}
	k, ok := r.keys[id]
	return k, ok
}

// unwrapRing unwraps every key of kr with the key-encryption key, else with one of the previous
// ones (then the ring is marked for re-wrapping).
func unwrapRing(kek []byte, previous [][]byte, kr *v1.Keyring) (*ring, error) {
	r := &ring{rv: kr.Metadata.ResourceVersion, active: kr.Spec.ActiveKeyID, keys: map[string][]byte{}}
	for _, w := range kr.Spec.Keys {
		k, err := unwrapKey(kek, w)
		for _, p := range previous {
			if err == nil {
				break
			}
			if k, err = unwrapKey(p, w); err == nil {
				r.oldWrap = true
			}
		}
		if err != nil {
			return nil, fmt.Errorf("keyrings/%s: data key %q cannot be unwrapped with this node's cluster secret (is it the cluster's?): %w", v1.KeyringName, w.ID, err)
		}
		r.keys[w.ID] = k
		r.ids = append(r.ids, w.ID)
	}
	if _, ok := r.keys[r.active]; !ok {
		return nil, fmt.Errorf("keyrings/%s: spec.activeKeyID %q is not one of its keys", v1.KeyringName, r.active)
	}
	return r, nil
}

// readRing reads the keyring from the store and caches it. store.ErrNotFound when there is none.
func (s *Store) readRing(ctx context.Context, opts ...store.ReadOption) (*ring, *v1.Keyring, error) {
	o, err := s.inner.Get(ctx, v1.KindKeyring, v1.KeyringName, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("read keyrings/%s: %w", v1.KeyringName, err)
	}
	kr, ok := o.(*v1.Keyring)
	if !ok {
		return nil, nil, fmt.Errorf("read keyrings/%s: got a %T", v1.KeyringName, o)
	}
	r, err := unwrapRing(s.kek, s.previous, kr)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ring != nil && revOf(s.ring.rv) > revOf(r.rv) {
		// A local read on a member that lags: the cached keyring is newer.
		return s.ring, kr, nil
	}
	s.ring = r
	return r, kr, nil
}

func revOf(rv string) int64 {
	n, _ := strconv.ParseInt(rv, 10, 64)
	return n
}

func (s *Store) cachedRing() *ring {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ring
}

// ensureRing reads the keyring linearizably, creating it with one fresh key when the cluster has
// none. Two members racing to create it are safe: the loser reads the winner's.
func (s *Store) ensureRing(ctx context.Context) (*ring, *v1.Keyring, error) {
	r, kr, err := s.readRing(ctx)
	if !errors.Is(err, store.ErrNotFound) {
		return r, kr, err
	}
	kr = &v1.Keyring{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindKeyring}}
	kr.Metadata.Name = v1.KeyringName
	id, w, err := s.newWrappedKey()
	if err != nil {
		return nil, nil, err
	}
	kr.Spec = v1.KeyringSpec{ActiveKeyID: id, Keys: []v1.WrappedKey{w}}
	_, err = s.inner.Create(ctx, kr)
	switch {
	case err == nil:
		s.log.Info("created the cluster keyring for Secrets at rest", "activeKey", id)
	case errors.Is(err, store.ErrAlreadyExists):
	default:
		return nil, nil, fmt.Errorf("create keyrings/%s: %w", v1.KeyringName, err)
	}
	return s.readRing(ctx)
}

func (s *Store) newWrappedKey() (string, v1.WrappedKey, error) {
	id := newKeyID()
	k, err := newDataKey()
	if err != nil {
		return "", v1.WrappedKey{}, fmt.Errorf("new data key: %w", err)
	}
	defer clear(k)
	nonce, ct, err := wrapKey(s.kek, id, k)
	if err != nil {
		return "", v1.WrappedKey{}, fmt.Errorf("wrap data key %q: %w", id, err)
	}
	now := s.now().UTC().Truncate(time.Second)
	return id, v1.WrappedKey{ID: id, Nonce: nonce, Ciphertext: ct, Created: &now}, nil
}

// keyFor finds the key a Secret's value is sealed with: from the cached keyring, else from a
// fresh read (a local one first, then a linearizable one: a rotation on another member may have
// added it moments ago). Still unknown is ErrUnknownKey, naming the Secret.
func (s *Store) keyFor(ctx context.Context, name, id string) ([]byte, error) {
	if k, ok := s.cachedRing().key(id); ok {
		return k, nil
	}
	var lastErr error
	for _, opts := range [][]store.ReadOption{{store.Stale()}, nil} {
		r, _, err := s.readRing(ctx, opts...)
		if err != nil {
			lastErr = err
			continue
		}
		if k, ok := r.key(id); ok {
			return k, nil
		}
		lastErr = nil
	}
	if lastErr != nil && !errors.Is(lastErr, store.ErrNotFound) {
		return nil, fmt.Errorf("secrets/%s: spec.sealed: data key %q is not in the cached keyring, and the keyring cannot be read: %w", name, id, lastErr)
	}
	return nil, fmt.Errorf("secrets/%s: spec.sealed: data key %q is not in the cluster keyring: %w", name, id, ErrUnknownKey)
}

// rewrap wraps every key of the keyring again under the current key-encryption key, when some
// key was wrapped under a previous cluster secret.
func (s *Store) rewrap(ctx context.Context) error {
	for range maxTries {
		r, kr, err := s.readRing(ctx)
		if err != nil || !r.oldWrap {
			return err
		}
		next := kr.DeepCopyObject().(*v1.Keyring)
		for i := range next.Spec.Keys {
			w := &next.Spec.Keys[i]
			if w.Nonce, w.Ciphertext, err = wrapKey(s.kek, w.ID, r.keys[w.ID]); err != nil {
				return fmt.Errorf("keyrings/%s: re-wrap key %q: %w", v1.KeyringName, w.ID, err)
			}
		}
		_, err = s.inner.Update(ctx, next)
		switch {
		case err == nil:
			s.log.Info("re-wrapped the keyring under the current cluster secret", "keys", r.ids)
			_, _, err = s.readRing(ctx)
			return err
		case errors.Is(err, store.ErrConflict):
			continue
		default:
			return fmt.Errorf("keyrings/%s: re-wrap: %w", v1.KeyringName, err)
		}
	}
	return fmt.Errorf("keyrings/%s: re-wrap: still conflicting after %d tries", v1.KeyringName, maxTries)
}

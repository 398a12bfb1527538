package seal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Progress is reported after each Secret a sweep handles.
type Progress struct {
	// Done of Total Secrets needing it have been sealed again so far.
	Done  int `json:"done"`
	Total int `json:"total"`
}

// RotateResult is what a rotation did.
type RotateResult struct {
	// ActiveKeyID is the key every Secret is sealed with now.
	ActiveKeyID string `json:"activeKeyID"`
	// Dropped are the keys removed from the keyring.
	Dropped []string `json:"dropped"`
	// Resealed is how many Secrets were sealed again; Secrets how many there are.
	Resealed int `json:"resealed"`
	Secrets  int `json:"secrets"`
	// Resumed: the keyring already held more than one key (an interrupted rotation), so no new
	// key was added and this run finished that rotation.
	Resumed bool `json:"resumed"`
}

// maxTries bounds compare-and-swap retries of one object and sweeps of a rotation.
const maxTries = 10

// Rotate makes a new data key active, seals every Secret again with it, and then drops every
// other key once no Secret uses it. Interrupted at any point, the next run finishes the job: a
// keyring holding more than one key is taken for an unfinished rotation, and no new key is added.
// progress, when not nil, is called after each Secret.
func (s *Store) Rotate(ctx context.Context, progress func(Progress)) (RotateResult, error) {
	var res RotateResult
	r, err := s.addActiveKey(ctx, &res)
	if err != nil {
		return res, err
	}
	res.ActiveKeyID = r.active
	done, total := 0, 0
	for range maxTries {
		n, m, err := s.sweep(ctx, r, func(sd *v1.SealedData) bool { return sd == nil || sd.KeyID != r.active },
			func(d, t int) {
				if progress != nil {
					progress(Progress{Done: done + d, Total: total + t})
				}
			})
		res.Resealed += n
		done, total = done+n, total+m
		if err != nil {
			return res, err
		}
		if res.Secrets, err = s.countSecrets(ctx); err != nil {
			return res, err
		}
		dropped, clean, err := s.dropUnused(ctx, r.active)
		if err != nil {
			return res, err
		}
		if clean {
			res.Dropped = dropped
			s.log.Info("data key rotation finished", "activeKey", r.active, "dropped", dropped, "resealed", res.Resealed, "secrets", res.Secrets)
			return res, nil
		}
		// A Secret was written under an older key between the sweep and the drop: sweep again.
	}
	return res, fmt.Errorf("data key rotation: Secrets kept being written under old keys after %d sweeps; run it again", maxTries)
}

// addActiveKey adds a new active key unless the keyring already holds several (an interrupted
// rotation), and returns the keyring.
func (s *Store) addActiveKey(ctx context.Context, res *RotateResult) (*ring, error) {
	for range maxTries {
		r, kr, err := s.ensureRing(ctx)
		if err != nil {
			return nil, err
		}
		if len(kr.Spec.Keys) > 1 {
			res.Resumed = true
			s.log.Info("data key rotation: finishing an interrupted rotation", "activeKey", r.active, "keys", r.ids)
			return r, nil
		}
		id, w, err := s.newWrappedKey()
		if err != nil {
			return nil, err
		}
		next := kr.DeepCopyObject().(*v1.Keyring)
		next.Spec.Keys = append(next.Spec.Keys, w)
		next.Spec.ActiveKeyID = id
		_, err = s.inner.Update(ctx, next)
		switch {
		case err == nil:
			s.log.Info("data key rotation: new active key", "activeKey", id, "previous", kr.Spec.ActiveKeyID)
			r, _, err := s.readRing(ctx)
			return r, err
		case errors.Is(err, store.ErrConflict):
			continue // someone else changed the keyring: look again
		default:
			return nil, fmt.Errorf("keyrings/%s: add key %q: %w", v1.KeyringName, id, err)
		}
	}
	return nil, fmt.Errorf("keyrings/%s: add a key: still conflicting after %d tries", v1.KeyringName, maxTries)
}

// sweep seals again, under r's active key, every Secret whose envelope need says so. progress
// gets (done, total) for this sweep.
func (s *Store) sweep(ctx context.Context, r *ring, need func(*v1.SealedData) bool, progress func(done, total int)) (int, int, error) {
	objs, _, err := s.inner.List(ctx, v1.KindSecret, v1.Selector{})
	if err != nil {
		return 0, 0, fmt.Errorf("list secrets: %w", err)
	}
	var todo []string
	for _, o := range objs {
		if need(o.(*v1.Secret).Spec.Sealed) {
			todo = append(todo, o.GetMetadata().Name)
		}
	}
	done := 0
	for _, name := range todo {
		n, err := s.resealOne(ctx, r, name, need)
		if err != nil {
			return done, len(todo), err
		}
		done += n
		progress(done, len(todo))
	}
	return done, len(todo), nil
}

// resealOne seals one Secret again under r's active key, with compare-and-swap, retrying on a
// conflict. It returns 1 when it wrote, 0 when there was nothing to do (gone, or already done).
func (s *Store) resealOne(ctx context.Context, r *ring, name string, need func(*v1.SealedData) bool) (int, error) {
	for range maxTries {
		o, err := s.inner.Get(ctx, v1.KindSecret, name)
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("secrets/%s: re-seal: %w", name, err)
		}
		sec := o.(*v1.Secret)
		if !need(sec.Spec.Sealed) {
			return 0, nil
		}
		data := sec.Spec.Data // plaintext from before sealing existed
		if sd := sec.Spec.Sealed; sd != nil {
			key, err := s.keyFor(ctx, name, sd.KeyID)
			if err != nil {
				return 0, err
			}
			if data, err = OpenData(key, name, sd); err != nil {
				return 0, err
			}
		}
		sd, err := SealData(r.keys[r.active], r.active, name, data)
		if err != nil {
			return 0, err
		}
		upd := &v1.Secret{TypeMeta: sec.TypeMeta, Metadata: sec.Metadata, Spec: v1.SecretSpec{Sealed: sd}}
		_, err = s.inner.Update(ctx, upd)
		switch {
		case err == nil:
			return 1, nil
		case errors.Is(err, store.ErrConflict):
			continue
		case errors.Is(err, store.ErrNotFound):
			return 0, nil
		default:
			return 0, fmt.Errorf("secrets/%s: re-seal: %w", name, err)
		}
	}
	return 0, fmt.Errorf("secrets/%s: re-seal: still conflicting after %d tries", name, maxTries)
}

func (s *Store) countSecrets(ctx context.Context) (int, error) {
	objs, _, err := s.inner.List(ctx, v1.KindSecret, v1.Selector{})
	if err != nil {
		return 0, fmt.Errorf("list secrets: %w", err)
	}
	return len(objs), nil
}

// dropUnused removes every key but active from the keyring when no Secret is sealed with
// another key (or unsealed); clean is false when one is, and nothing was dropped.
func (s *Store) dropUnused(ctx context.Context, active string) (dropped []string, clean bool, err error) {
	for range maxTries {
		objs, _, err := s.inner.List(ctx, v1.KindSecret, v1.Selector{})
		if err != nil {
			return nil, false, fmt.Errorf("list secrets: %w", err)
		}
		for _, o := range objs {
			if sd := o.(*v1.Secret).Spec.Sealed; sd == nil || sd.KeyID != active {
				return nil, false, nil
			}
		}
		_, kr, err := s.readRing(ctx)
		if err != nil {
			return nil, false, err
		}
		if kr.Spec.ActiveKeyID != active {
			return nil, false, fmt.Errorf("keyrings/%s: another rotation made %q active meanwhile; run it again", v1.KeyringName, kr.Spec.ActiveKeyID)
		}
		next := kr.DeepCopyObject().(*v1.Keyring)
		next.Spec.Keys = slices.DeleteFunc(next.Spec.Keys, func(w v1.WrappedKey) bool {
			if w.ID != active {
				dropped = append(dropped, w.ID)
				return true
			}
			return false
		})
		if len(dropped) == 0 {
			return nil, true, nil
		}
		_, err = s.inner.Update(ctx, next)
		switch {
		case err == nil:
			if _, _, err := s.readRing(ctx); err != nil {
				s.log.Warn("re-read the keyring after dropping keys", "err", err)
			}
			return dropped, true, nil
		case errors.Is(err, store.ErrConflict):
			dropped = nil
			continue
		default:
			return nil, false, fmt.Errorf("keyrings/%s: drop keys %v: %w", v1.KeyringName, dropped, err)
		}
	}
	return nil, false, fmt.Errorf("keyrings/%s: drop old keys: still conflicting after %d tries", v1.KeyringName, maxTries)
}

// Migrate makes sure the keyring exists (wrapped under the current cluster secret) and seals
// every Secret still held in plaintext (written before sealing existed). It returns how many
// it sealed.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	r, _, err := s.ensureRing(ctx)
	if err != nil {
		return 0, err
	}
	if r.oldWrap {
		if err := s.rewrap(ctx); err != nil {
			return 0, err
		}
	}
	n, _, err := s.sweep(ctx, r, func(sd *v1.SealedData) bool { return sd == nil }, func(int, int) {})
	if n > 0 {
		s.log.Info("sealed Secrets stored in plaintext by an earlier version", "count", n, "activeKey", r.active)
	}
	return n, err
}

// Run creates the keyring if the cluster has none, re-wraps it if it is under a previous
// cluster secret, seals the Secrets stored in plaintext, and then goes on sealing any that
// arrive in plaintext (written past the wrapper, e.g. by a member of an earlier version during a
// rolling upgrade) until ctx ends. Failures (no quorum yet, a member still catching up) are
// retried with backoff. It is meant to run in the background for the agent's lifetime.
func (s *Store) Run(ctx context.Context) error {
	backoff := time.Second
	for ctx.Err() == nil {
		err := s.migrateAndFollow(ctx, func() { backoff = time.Second })
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("Secrets at rest: keyring or plaintext migration not done; retrying", "err", err, "after", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	return nil
}

// migrateAndFollow runs Migrate, then seals every plaintext Secret the store reports, until the
// watch fails. The watch starts first, so nothing written between the two is missed.
func (s *Store) migrateAndFollow(ctx context.Context, migrated func()) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.inner.Watch(wctx, v1.KindSecret, 0)
	if err != nil {
		return fmt.Errorf("watch secrets: %w", err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		return err
	}
	migrated()
	plaintext := func(sd *v1.SealedData) bool { return sd == nil }
	for ev := range ch {
		if ev.Type == store.Error {
			return fmt.Errorf("watch secrets: %w", ev.Err)
		}
		sec, ok := ev.Object.(*v1.Secret)
		if !ok || ev.Type == store.Deleted || sec.Spec.Sealed != nil || len(sec.Spec.Data) == 0 {
			continue
		}
		r, _, err := s.ensureRing(ctx)
		if err != nil {
			return err
		}
		n, err := s.resealOne(ctx, r, sec.Metadata.Name, plaintext)
		if err != nil {
			return err
		}
		if n > 0 {
			s.log.Warn("sealed a Secret that was written in plaintext (by an agent of an earlier version?)", "secret", sec.Metadata.Name)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch secrets: closed")
}

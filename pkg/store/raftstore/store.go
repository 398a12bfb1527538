package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// WriteMutation proposes a Mutation as it is, as a proposer of another version would have
// logged it (its object may carry fields this version does not know). It implements
// storetest.MutationWriter.
func (s *Store) WriteMutation(ctx context.Context, mut store.Mutation) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.write(ctx, mut)
}

func (s *Store) mutation(ctx context.Context, op store.Op, obj v1.Object) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mut, err := store.NewMutation(op, obj, s.cfg.Now(), store.NewUID())
	if err != nil {
		return nil, err
	}
	return s.write(ctx, mut)
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return s.mutation(ctx, store.OpCreate, obj)
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return s.mutation(ctx, store.OpUpdate, obj)
}

// UpdateStatus implements store.Store.
func (s *Store) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	return s.mutation(ctx, store.OpUpdateStatus, obj)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.write(ctx, store.Mutation{Op: store.OpDelete, Kind: kind, Name: name, ResourceVersion: resourceVersion, Now: s.cfg.Now().UTC()})
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	if err := s.read(ctx, opts); err != nil {
		return nil, err
	}
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b = bytes.Clone(tx.Bucket(bucketObjects).Get(objectKey(kind, name)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %s/%s: %w", kind, name, err)
	}
	if b == nil {
		return nil, fmt.Errorf("%s: %w", v1.Key{Kind: kind, Name: name}, store.ErrNotFound)
	}
	return store.DecodeKind(kind, b)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	if err := s.read(ctx, opts); err != nil {
		return nil, 0, err
	}
	var (
		out []v1.Object
		rev int64
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		rev = int64(getU64(tx.Bucket(bucketMeta), keyRevision))
		prefix := objectKey(kind, "")
		c := tx.Bucket(bucketObjects).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			o, err := store.DecodeKind(kind, v) // decoding copies out of bbolt's memory
			if err != nil {
				return err
			}
			if sel.Matches(o.GetMetadata().Labels) {
				out = append(out, o)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("raftstore: list %s: %w", kind, err)
	}
	if out == nil {
		out = []v1.Object{}
	}
	store.SortByName(out)
	return out, rev, nil
}

// Watch implements store.Store. Watches are served from this member's history; every member
// applies the same entries at the same revisions, so a watch can resume on another member.
func (s *Store) Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	return s.history.Watch(ctx, kind, fromRev)
}

// Revision implements store.Store: the latest revision, read linearizably.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.read(ctx, nil); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revision, nil
}

// Compact implements store.Store. It forgets this member's watch history; the raft log is
// compacted on its own schedule (Config.SnapshotEntries).
func (s *Store) Compact(_ context.Context, rev int64) error {
	s.history.Compact(rev)
	return nil
}

// Close stops the raft loop and the transport and closes the file. Pending requests fail
// with store.ErrClosed; watches end.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.tr.closeListener()
		close(s.stop)
		<-s.done
		s.node.Stop()
		s.tr.close()
		s.history.Close()
		if e := s.wal.Close(); e != nil {
			err = fmt.Errorf("raftstore: close: %w", e)
		}
		if e := s.db.Close(); e != nil && err == nil {
			err = fmt.Errorf("raftstore: close: %w", e)
		}
	})
	return err
}

// Failed returns a channel closed when the raft loop stopped on a storage failure (a full
// disk, an I/O error); Err says why. The member then answers nothing but ErrUnavailable
// until it is closed and opened again on the same data dir: everything acknowledged is on
// disk, and the failed batch was rolled back.
func (s *Store) Failed() <-chan struct{} { return s.failedC }

// Err returns the failure that stopped the raft loop, or nil.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// JoinExtra returns the Extra map of the join response this node received when it joined
// (kept on disk, so it is there after restarts too), or nil for the node that bootstrapped.
func (s *Store) JoinExtra() map[string]string { return maps.Clone(s.joinExtra) }

// ID returns this member's raft id.
func (s *Store) ID() uint64 { return s.id }

// ClusterID returns the cluster's id, chosen when it was bootstrapped.
func (s *Store) ClusterID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusterID
}

package raftstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Export is every object of the store at one revision, as the store holds them (Secrets
// sealed). What `ctl snapshot save` and scheduled snapshots write (pkg/snapshot).
type Export struct {
	// ClusterID is the cluster's id.
	ClusterID string
	// Member names the member that served it.
	Member string
	// Revision is the revision every object was read at.
	Revision int64
	// Objects, sorted by kind and name.
	Objects []ExportObject
}

// ExportObject is one object's stored JSON.
type ExportObject struct {
	Kind, Name string
	Object     []byte
}

// Export reads every object at one revision: a linearizable read (so it holds every write
// acknowledged before it was called, from any member), then the object table and the
// revision in one bbolt read transaction, which the apply loop only ever changes together.
func (s *Store) Export(ctx context.Context) (*Export, error) {
	if err := s.read(ctx, nil); err != nil {
		return nil, fmt.Errorf("raftstore: export: %w", err)
	}
	ex := &Export{ClusterID: s.ClusterID(), Member: s.cfg.NodeName}
	err := s.db.View(func(tx *bolt.Tx) error {
		ex.Revision = int64(getU64(tx.Bucket(bucketMeta), keyRevision))
		return tx.Bucket(bucketObjects).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return fmt.Errorf("malformed object key %q", k)
			}
			ex.Objects = append(ex.Objects, ExportObject{Kind: string(k[:i]), Name: string(k[i+1:]), Object: bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: export: %w", err)
	}
	return ex, nil
}

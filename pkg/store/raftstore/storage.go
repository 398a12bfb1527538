package raftstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The bbolt file holds, each in its bucket:
//
//	meta:    node id, cluster id, conf state (as of the applied index), applied index,
//	         revision, the index and term of the last entry compacted away, peers learnt
//	         when joining, the log format ("wal1": the raft log and hard state are in the
//	         write-ahead log, <dataDir>/wal; see walstate.go)
//	log:     empty since the write-ahead log (raft entries by big-endian index before, with
//	         the hard state in meta; converted once on open)
//	objects: "kind\x00name" -> the object's JSON, as of the applied index
//	members: big-endian id -> Member JSON, as of the applied index
//
// The object table at the applied index is the snapshot: it is written in the same
// transaction as the applied index, so it never disagrees with it. A snapshot sent to a
// follower is serialised from it (see snapshotData).
var (
	bucketMeta    = []byte("meta")
	bucketLog     = []byte("log")
	bucketObjects = []byte("objects")
	bucketMembers = []byte("members")

	keyNodeID       = []byte("nodeID")
	keyClusterID    = []byte("clusterID")
	keyHardState    = []byte("hardState")
	keyConfState    = []byte("confState")
	keyApplied      = []byte("applied")
	keyRevision     = []byte("revision")
	keyCompactIndex = []byte("compactIndex")
	keyCompactTerm  = []byte("compactTerm")
	keyPeers        = []byte("joinPeers")
	keyJoinExtra    = []byte("joinExtra")
	keyLogFormat    = []byte("logFormat")
)

// Member is one member of the cluster as the log records it.
type Member struct {
	ID          uint64 `json:"id"`
	Name        string `json:"name"`
	RaftAddress string `json:"raftAddress"`
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func objectKey(kind, name string) []byte {
	k := make([]byte, 0, len(kind)+1+len(name))
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, name...)
}

func openDB(dir string) (*bolt.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: create data dir: %w", err)
	}
	path := filepath.Join(dir, "raft.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketLog, bucketObjects, bucketMembers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftstore: init %s: %w", path, err)
	}
	return db, nil
}

// diskState is what Open recovers from the file.
type diskState struct {
	nodeID       uint64
	clusterID    string
	hard         *pb.HardState
	conf         *pb.ConfState
	applied      uint64
	revision     int64
	compactIndex uint64
	compactTerm  uint64
	entries      []*pb.Entry
	members      map[uint64]Member
	joinPeers    []Member
	joinExtra    map[string]string
	// logFormat is "" for a data dir whose raft log is in the log bucket (before the
	// write-ahead log), formatWAL after.
	logFormat string
}

// initialized reports whether this node has raft state (so it must restart, not bootstrap).
func (d *diskState) initialized() bool {
	return d.hard != nil || d.compactIndex > 0 || len(d.entries) > 0
}

func loadState(db *bolt.DB) (*diskState, error) {
	d := &diskState{members: map[uint64]Member{}}
	err := db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		d.nodeID = getU64(meta, keyNodeID)
		d.clusterID = string(meta.Get(keyClusterID))
		d.logFormat = string(meta.Get(keyLogFormat))
		if v := meta.Get(keyHardState); v != nil && d.logFormat == "" {
			d.hard = &pb.HardState{}
			if err := proto.Unmarshal(v, d.hard); err != nil {
				return fmt.Errorf("decode hard state: %w", err)
			}
		}
		d.conf = &pb.ConfState{}
		if v := meta.Get(keyConfState); v != nil {
			if err := proto.Unmarshal(v, d.conf); err != nil {
				return fmt.Errorf("decode conf state: %w", err)
			}
		}
		d.applied = getU64(meta, keyApplied)
		d.revision = int64(getU64(meta, keyRevision))
		d.compactIndex = getU64(meta, keyCompactIndex)
		d.compactTerm = getU64(meta, keyCompactTerm)
		if v := meta.Get(keyJoinExtra); v != nil {
			if err := json.Unmarshal(v, &d.joinExtra); err != nil {
				return fmt.Errorf("decode join extra: %w", err)
			}
		}
		if v := meta.Get(keyPeers); v != nil {
			if err := json.Unmarshal(v, &d.joinPeers); err != nil {
				return fmt.Errorf("decode join peers: %w", err)
			}
		}
		if err := tx.Bucket(bucketLog).ForEach(func(_, v []byte) error {
			e := &pb.Entry{}
			if err := proto.Unmarshal(v, e); err != nil {
				return fmt.Errorf("decode log entry: %w", err)
			}
			d.entries = append(d.entries, e)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketMembers).ForEach(func(_, v []byte) error {
			var m Member
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode member: %w", err)
			}
			d.members[m.ID] = m
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: load: %w", err)
	}
	// Entries at or below the compaction index are gone for raft (written in one transaction
	// with it, so this is belt and braces).
	for len(d.entries) > 0 && d.entries[0].GetIndex() <= d.compactIndex {
		d.entries = d.entries[1:]
	}
	return d, nil
}

func putProto(b *bolt.Bucket, k []byte, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(k, v)
}

// boltTable is the store.Table of the objects bucket inside the apply transaction.
type boltTable struct{ b *bolt.Bucket }

// tableError marks failures of the table itself, which stop the node, as opposed to outcomes
// of store.Apply (conflicts, not found...), which are the proposer's answer.
type tableError struct{ err error }

func (e *tableError) Error() string { return "raftstore: object table: " + e.err.Error() }
func (e *tableError) Unwrap() error { return e.err }

func (t boltTable) Get(kind, name string) ([]byte, error) {
	v := t.b.Get(objectKey(kind, name))
	if v == nil {
		return nil, nil
	}
	// bbolt's memory is only valid inside the transaction; the result outlives it.
	return bytes.Clone(v), nil
}

func (t boltTable) Put(kind, name string, value []byte) error {
	if err := t.b.Put(objectKey(kind, name), value); err != nil {
		return &tableError{err}
	}
	return nil
}

func (t boltTable) Delete(kind, name string) error {
	if err := t.b.Delete(objectKey(kind, name)); err != nil {
		return &tableError{err}
	}
	return nil
}

// snapshotData is a snapshot's payload: the whole applied state at its index.
type snapshotData struct {
	ClusterID string        `json:"clusterID"`
	Revision  int64         `json:"revision"`
	Members   []Member      `json:"members"`
	Objects   []snapshotObj `json:"objects"`
}

type snapshotObj struct {
	Kind   string          `json:"kind"`
	Name   string          `json:"name"`
	Object json.RawMessage `json:"object"`
}

// encodeSnapshot serialises the applied state as seen by tx.
func encodeSnapshot(tx *bolt.Tx, clusterID string) ([]byte, error) {
	sd := snapshotData{ClusterID: clusterID, Revision: int64(getU64(tx.Bucket(bucketMeta), keyRevision))}
	err := tx.Bucket(bucketMembers).ForEach(func(_, v []byte) error {
		var m Member
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		sd.Members = append(sd.Members, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot members: %w", err)
	}
	err = tx.Bucket(bucketObjects).ForEach(func(k, v []byte) error {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return fmt.Errorf("malformed object key %q", k)
		}
		sd.Objects = append(sd.Objects, snapshotObj{Kind: string(k[:i]), Name: string(k[i+1:]), Object: bytes.Clone(v)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot objects: %w", err)
	}
	return json.Marshal(sd)
}

// decodeSnapshot parses a snapshot payload received from a peer.
func decodeSnapshot(b []byte) (*snapshotData, error) {
	var sd snapshotData
	if err := json.Unmarshal(b, &sd); err != nil {
		return nil, fmt.Errorf("raftstore: decode snapshot: %w", err)
	}
	if sd.Revision < 0 {
		return nil, fmt.Errorf("raftstore: decode snapshot: negative revision %d", sd.Revision)
	}
	for _, o := range sd.Objects {
		if o.Kind == "" || o.Name == "" || bytes.IndexByte([]byte(o.Kind), 0) >= 0 {
			return nil, fmt.Errorf("raftstore: decode snapshot: malformed object key %q/%q", o.Kind, o.Name)
		}
	}
	for _, m := range sd.Members {
		if m.ID == 0 {
			return nil, errors.New("raftstore: decode snapshot: member with id 0")
		}
	}
	return &sd, nil
}

// restoreSnapshot replaces the applied state with a snapshot received from the leader.
func restoreSnapshot(tx *bolt.Tx, snap *pb.Snapshot, sd *snapshotData) error {
	for _, name := range [][]byte{bucketObjects, bucketMembers, bucketLog} {
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	ob := tx.Bucket(bucketObjects)
	for _, o := range sd.Objects {
		if err := ob.Put(objectKey(o.Kind, o.Name), o.Object); err != nil {
			return err
		}
	}
	mb := tx.Bucket(bucketMembers)
	for _, m := range sd.Members {
		v, _ := json.Marshal(m)
		if err := mb.Put(u64(m.ID), v); err != nil {
			return err
		}
	}
	md := snap.GetMetadata()
	meta := tx.Bucket(bucketMeta)
	for k, v := range map[string]uint64{string(keyApplied): md.GetIndex(), string(keyCompactIndex): md.GetIndex(), string(keyCompactTerm): md.GetTerm(), string(keyRevision): uint64(sd.Revision)} {
		if err := meta.Put([]byte(k), u64(v)); err != nil {
			return err
		}
	}
	if sd.ClusterID != "" {
		if err := meta.Put(keyClusterID, []byte(sd.ClusterID)); err != nil {
			return err
		}
	}
	return putProto(meta, keyConfState, md.GetConfState())
}

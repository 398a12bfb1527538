package raftstore

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Seed is the state a new cluster starts from instead of an empty store (a restore from a
// snapshot): its objects, as they were stored, and the revision they were read at.
type Seed struct {
	// Revision is the store's revision after seeding: the next write gets Revision+1, so
	// every object keeps its resourceVersion and no resourceVersion of the old cluster is
	// ever reused for another change.
	Revision int64
	// Objects are written as they are: uid, generation, resourceVersion, creation time,
	// status.
	Objects []ExportObject
	// Source identifies what the seed came from (the snapshot's checksum); kept in the data
	// dir (SeededFrom).
	Source string
}

var keySeededFrom = []byte("seededFrom")

// seedIndex and seedTerm are the raft index and term of the seeded state: raft starts from a
// snapshot there, as etcdutl's snapshot restore does, so members that join later receive the
// seeded objects in a raft snapshot (the log before it does not exist).
const (
	seedIndex uint64 = 1
	seedTerm  uint64 = 1
)

// seed writes cfg.Seed into a data dir that has no raft state yet, as the applied state of a
// one-member cluster (this node, at advertise) at seedIndex: objects, revision, members, conf
// state and the compaction point in one bbolt transaction, then the hard state in the
// write-ahead log. d is updated to what loadState would now read, so Open restarts raft from
// it (raft.RestartNode) instead of bootstrapping.
func (s *Store) seed(d *diskState, sd *Seed, advertise string) error {
	if d.initialized() {
		return fmt.Errorf("raftstore: seed: %s already holds raft state", s.cfg.DataDir)
	}
	if sd.Revision < 0 {
		return fmt.Errorf("raftstore: seed: negative revision %d", sd.Revision)
	}
	self := Member{ID: s.id, Name: s.cfg.NodeName, RaftAddress: advertise}
	conf := &pb.ConfState{Voters: []uint64{s.id}}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bucketObjects)
		for _, o := range sd.Objects {
			if o.Kind == "" || o.Name == "" {
				return fmt.Errorf("object with an empty kind or name")
			}
			if err := ob.Put(objectKey(o.Kind, o.Name), o.Object); err != nil {
				return err
			}
		}
		mv, _ := json.Marshal(self)
		if err := tx.Bucket(bucketMembers).Put(u64(self.ID), mv); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		for k, v := range map[string]uint64{string(keyApplied): seedIndex, string(keyCompactIndex): seedIndex, string(keyCompactTerm): seedTerm, string(keyRevision): uint64(sd.Revision)} {
			if err := meta.Put([]byte(k), u64(v)); err != nil {
				return err
			}
		}
		if err := meta.Put(keySeededFrom, []byte(sd.Source)); err != nil {
			return err
		}
		return putProto(meta, keyConfState, conf)
	})
	if err != nil {
		return fmt.Errorf("raftstore: seed: %w", err)
	}
	term, vote, commit := seedTerm, uint64(0), seedIndex
	hs := &pb.HardState{Term: &term, Vote: &vote, Commit: &commit}
	// Were this lost in a crash, the next Open would derive the same commit index from the
	// applied one (fromWAL) and raft would start at term 0 below the snapshot's term 1, which
	// it handles; writing it keeps the first start and a restart alike.
	if err := s.wal.SaveSnapshot(hs, seedIndex, seedTerm); err != nil {
		return fmt.Errorf("raftstore: seed: %w", err)
	}
	if err := s.wal.Sync(); err != nil {
		return fmt.Errorf("raftstore: seed: %w", err)
	}
	d.applied, d.compactIndex, d.compactTerm, d.revision = seedIndex, seedIndex, seedTerm, sd.Revision
	d.conf, d.hard, d.entries = conf, hs, nil
	d.members = map[uint64]Member{self.ID: self}
	s.members = d.members
	return nil
}

// SeededFrom returns the Source of the seed this member's data dir was started from, or ""
// (a cluster bootstrapped empty, or a member that joined).
func (s *Store) SeededFrom() string {
	var src string
	_ = s.db.View(func(tx *bolt.Tx) error {
		src = string(tx.Bucket(bucketMeta).Get(keySeededFrom))
		return nil
	})
	return src
}

// Package raftstore is the replicated implementation of store.Store: an etcd-raft log
// (go.etcd.io/raft/v3) persisted, with the object table it produces, in one bbolt file per
// node.
//
// It owns: the raft Ready loop (one goroutine owns the raft.Node), persistence and recovery
// (entries, hard state, snapshot metadata, objects, applied index and revision, all in the
// same bbolt file, each batch in fsynced transactions), snapshots and log compaction, the
// peer transport (length-prefixed protobuf frames over TCP, authenticated by the cluster
// token, optionally mutual TLS), linearizable reads through ReadIndex, and membership (join
// as a learner, promotion keeping an odd number of voters, removal).
//
// Every replica applies the same store.Mutations through store.Apply, so semantics are the
// in-memory store's; the conformance suite in pkg/store/storetest holds it to them.
//
// It imports api/v1 and pkg/store and nothing else of Constellation's; it must never import
// controllers, pkg/agent or pkg/apiserver (the agent mounts JoinHandler itself).
package raftstore

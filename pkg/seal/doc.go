// Package seal keeps Secret values encrypted at rest: in bbolt, in the raft log and in
// snapshots.
//
// A Secret's spec.data is JSON-encoded and sealed with AES-256-GCM under a cluster data key into
// spec.sealed ({keyID, nonce, ciphertext}); the additional data binds the Secret's name and the
// key ID, so a sealed value cannot be moved to another Secret or relabelled with another key.
// The data keys live in the replicated store itself, in the internal Keyring object "data", so
// every member has them, including one that was down during a rotation; each key there is
// wrapped (AES-256-GCM) by a key-encryption key derived with HKDF-SHA256 from the cluster
// secret, which every member receives when it joins.
//
// Store wraps any store.Store: it seals on Create and Update and unseals on Get, List, Watch and
// the objects writes return, so every reader in the agent sees plaintext and nothing changes for
// them. A value whose key ID is not in the cached keyring makes it re-read the keyring; a key
// still unknown is an error naming the Secret, never a fallback to anything unsealed.
//
// Rotate adds a new active key, re-seals every Secret with compare-and-swap writes and drops the
// old keys once no Secret uses them; it is resumable (a keyring with more than one key is an
// interrupted rotation, which the next run finishes). Migrate seals the plaintext Secrets of a
// store written before this package existed.
//
// It imports api/v1 and pkg/store only; it must not import the agent, the API server or any
// controller.
package seal

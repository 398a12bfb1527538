// Package snapshot owns the snapshot file: a consistent copy of every object of a cluster's
// store at one revision, written by `ctl snapshot save`, by the agent's scheduled snapshots
// (--snapshot.interval) and read by `constellation-agent --restore` (docs/snapshots.md).
//
// The file is small and versioned: a fixed prefix (magic and format version), a JSON header
// (who wrote it, from which cluster and member, at which revision, how many objects), the
// objects as the store holds them (length-prefixed JSON, sorted by kind and name), and a
// trailer with a SHA-256 over everything before it. Decode checks all of it and refuses a
// corrupt, truncated or newer file with an error that says what is wrong and where.
//
// Objects are carried as the store holds them: Secrets stay sealed (spec.sealed) and the
// internal keyring stays wrapped under the cluster secret of the cluster that wrote it.
//
// Schedule writes snapshots to a directory on an interval and keeps the newest N.
//
// It imports the standard library and internal/atomicfile only (ctl links it to check what it
// downloads): not the store, not api/v1, not the agent.
package snapshot

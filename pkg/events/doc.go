// Package events records what happened to objects as Event objects in the store (see
// docs/events.md): the recorder controllers call, and the retention sweeper.
//
// The store is replicated through raft, so the recorder never writes once per occurrence.
// Occurrences with the same object, type, reason, message, component and node are one series:
// the first is written at the next flush, the ones that follow within Debounce are folded into
// the series' count and written together, and all writes share one token bucket. Recording
// never blocks and never waits for the store: a series that cannot be held (the recorder is
// full) is dropped and counted in constellation_events_dropped_total.
//
// The sweeper deletes Events older than MaxAge and, past MaxEvents, the oldest ones. It runs on
// the one agent holding the controller Lease and checks the lease before every delete.
//
// This package imports api/v1 and pkg/store only; it must not import controllers.
package events

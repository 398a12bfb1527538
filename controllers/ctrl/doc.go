// Package ctrl runs reconcilers: one rate-limited, de-duplicating work queue per controller
// (client-go's workqueue) feeding a controller-runtime TypedReconciler, with the result handling
// of controller-runtime's controller: an error requeues with backoff, a TerminalError is logged
// and dropped, RequeueAfter polls, success forgets the key. No two workers ever hold the same key.
//
// It is the only place controllers touch the queue, and ListWatch is the one way they follow
// the store. Cache is an informer on top of it: the decoded objects of one kind in memory, with
// counted indexes and a handler, so that a reconcile reads what it needs without listing (and
// decoding) the store. What a Cache hands out is shared and must never be modified.
//
// It imports api/v1 and pkg/store only.
package ctrl

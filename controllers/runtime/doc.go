// Package runtime runs reconcilers: one rate-limited, de-duplicating work queue per controller
// (client-go's workqueue) feeding a controller-runtime TypedReconciler, with the result handling
// of controller-runtime's controller: an error requeues with backoff, a TerminalError is logged
// and dropped, RequeueAfter polls, success forgets the key. No two workers ever hold the same key.
//
// It is the only place controllers touch the queue, and ListWatch is the one way they follow
// the store. It imports api/v1 and pkg/store only.
package runtime

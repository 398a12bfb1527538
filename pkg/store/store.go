package store

import (
	"context"
	"errors"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Errors returned by every Store. Check them with errors.Is.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrAlreadyExists = errors.New("store: already exists")
	ErrConflict      = errors.New("store: resourceVersion conflict")
	ErrTooOld        = errors.New("store: requested revision has been compacted")
	ErrUnavailable   = errors.New("store: unavailable")
	ErrClosed        = errors.New("store: closed")
)

// Store is desired state: typed objects with revisions, compare-and-swap and watches.
// Objects returned are the caller's to keep and change; objects passed in are not retained.
type Store interface {
	// Get returns one object, or ErrNotFound.
	Get(ctx context.Context, kind, name string, opts ...ReadOption) (v1.Object, error)
	// List returns the objects of a kind matching sel, sorted by name, and the revision the list
	// was read at (a Watch from it misses nothing).
	List(ctx context.Context, kind string, sel v1.Selector, opts ...ReadOption) ([]v1.Object, int64, error)
	// Create stores a new object. ErrAlreadyExists if the name is taken; an object carrying a
	// resourceVersion is refused with ErrConflict.
	Create(ctx context.Context, obj v1.Object) (v1.Object, error)
	// Update replaces metadata (labels, annotations, finalizers, owners) and spec. Status is kept.
	Update(ctx context.Context, obj v1.Object) (v1.Object, error)
	// UpdateStatus replaces status only.
	UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error)
	// Delete removes an object, or marks it deleted while finalizers remain. A non-empty
	// resourceVersion is a precondition.
	Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error)
	// Watch streams changes to objects of kind ("" for every kind) after revision fromRev (0: from
	// now). The channel closes when ctx ends or the store closes; a failure (ErrTooOld when the
	// watcher falls behind compacted history) arrives as a final Error event.
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan Event, error)
	// Revision returns the latest applied revision.
	Revision(ctx context.Context) (int64, error)
	// Compact forgets watch history up to and including rev.
	Compact(ctx context.Context, rev int64) error
	// Close releases the store. Watches end.
	Close() error
}

// Writer is the part of Store a component needs to read, create and replace objects of its own
// (leases, Events): a narrower interface, so tests can fake it and failures can be injected.
type Writer interface {
	Get(ctx context.Context, kind, name string, opts ...ReadOption) (v1.Object, error)
	Create(ctx context.Context, obj v1.Object) (v1.Object, error)
	Update(ctx context.Context, obj v1.Object) (v1.Object, error)
}

// EventType is ADDED, MODIFIED, DELETED, or ERROR for a watch that failed.
type EventType string

// Event types.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
	Error    EventType = "ERROR"
)

// Event is one change seen by a watch.
type Event struct {
	Type     EventType
	Object   v1.Object
	Revision int64
	// Err is set on Error events.
	Err error
}

// ReadOption tunes a read.
type ReadOption func(*ReadOptions)

// ReadOptions are the options of a read.
type ReadOptions struct {
	// Stale allows a local read that may lag the cluster. Default false: reads are linearizable.
	Stale bool
}

// Stale allows a read from the local replica without confirming leadership: faster, possibly
// behind. For hot paths that tolerate it (rendering, status).
func Stale() ReadOption { return func(o *ReadOptions) { o.Stale = true } }

// ApplyReadOptions folds opts into ReadOptions, for implementations.
func ApplyReadOptions(opts []ReadOption) ReadOptions {
	var o ReadOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

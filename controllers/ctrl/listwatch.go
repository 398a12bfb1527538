package ctrl

import (
	"context"
	"log/slog"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Source is what ListWatch reads: the List and Watch of a store.Store.
type Source interface {
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Watch(ctx context.Context, kind string, fromRev int64) (<-chan store.Event, error)
}

var _ Source = store.Store(nil)

// RelistDelay is the wait before listing again after a watch ended or a list failed.
const RelistDelay = time.Second

// Feed receives what ListWatchInto reads: every full list, then each change after it.
type Feed interface {
	// Replace is called with every object of the kind at revision rev, after each (re)list.
	// Objects absent from objs are gone, even if no Deleted event was seen for them.
	Replace(objs []v1.Object, rev int64)
	// Apply is called with each change after the last Replace, in revision order.
	Apply(ev store.Event)
}

// ListWatch feeds a controller from the store, as an informer would: it lists kind (a local,
// possibly stale read, so controllers keep working from the local replica without quorum),
// hands every object to on as an ADDED event, then follows changes. When the watch ends —
// history compacted, the store restarted, a leader change on a follower — it lists again after
// RelistDelay, so nothing is missed: controllers are level-triggered and only need to be woken.
// It returns when ctx ends.
func ListWatch(ctx context.Context, src Source, kind string, log *slog.Logger, on func(store.Event)) {
	ListWatchInto(ctx, src, kind, log, addAll(on))
}

// addAll turns a list into ADDED events, for callers that only need to be woken.
type addAll func(store.Event)

func (f addAll) Replace(objs []v1.Object, rev int64) {
	for _, o := range objs {
		f(store.Event{Type: store.Added, Object: o, Revision: rev})
	}
}

func (f addAll) Apply(ev store.Event) { f(ev) }

// ListWatchInto is ListWatch for a Feed that keeps state (the Cache): it is told where each
// list begins and ends, so that objects deleted while the watch was down are noticed. It
// returns when ctx ends.
func ListWatchInto(ctx context.Context, src Source, kind string, log *slog.Logger, feed Feed) {
	for ctx.Err() == nil {
		err := listWatchOnce(ctx, src, kind, feed)
		if ctx.Err() != nil {
			return
		}
		if err != nil && log != nil {
			log.Warn("watch failed, listing again", "kind", kind, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(RelistDelay):
		}
	}
}

// listWatchOnce lists, then follows the watch until it ends.
func listWatchOnce(ctx context.Context, src Source, kind string, feed Feed) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objs, rev, err := src.List(ctx, kind, v1.Selector{}, store.Stale())
	if err != nil {
		return err
	}
	ch, err := src.Watch(ctx, kind, rev)
	if err != nil {
		return err
	}
	var skipThrough int64
	if rev == 0 {
		// Watch from revision 0 means "from now": an object written to an empty store between
		// the List and the Watch would be in neither. List again now that the watch runs; the
		// watch's events up to that list's revision are then already in it and are skipped.
		if objs, rev, err = src.List(ctx, kind, v1.Selector{}, store.Stale()); err != nil {
			return err
		}
		skipThrough = rev
	}
	feed.Replace(objs, rev)
	for ev := range ch {
		if ev.Type == store.Error {
			return ev.Err
		}
		if ev.Object != nil && (ev.Revision == 0 || ev.Revision > skipThrough) {
			feed.Apply(ev)
		}
	}
	return nil
}

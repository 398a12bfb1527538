package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// History keeps the most recent events for watches and lets watchers wait for new ones. Both
// store implementations use it: events are appended in revision order by the single applier.
type History struct {
	mu sync.Mutex
	// guarded by mu:
	events   []RawEvent    // ascending revisions, events[0] is the oldest kept
	compact  int64         // revisions <= compact are forgotten
	current  int64         // latest applied revision
	notify   chan struct{} // closed and replaced on every append
	closed   bool
	capacity int
}

// NewHistory returns a history that keeps at most capacity events (older ones are compacted
// automatically), starting at revision current.
func NewHistory(capacity int, current int64) *History {
	if capacity <= 0 {
		capacity = 10000
	}
	return &History{current: current, compact: current, notify: make(chan struct{}), capacity: capacity}
}

// Append records ev (its revision must exceed every earlier one) and wakes watchers.
func (h *History) Append(ev RawEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
	h.current = ev.Revision
	if len(h.events) > h.capacity {
		h.dropLocked(len(h.events) - h.capacity)
	}
	h.wakeLocked()
}

// dropLocked forgets the n oldest events. It reslices instead of copying the rest (a full
// history would otherwise copy capacity events on every append); append reallocates, copying
// only the kept events, once the slack in front is used up, so an append costs O(1) amortised.
// The dropped slots are zeroed so that their objects can be collected meanwhile.
func (h *History) dropLocked(n int) {
	if n <= 0 {
		return
	}
	h.compact = h.events[n-1].Revision
	clear(h.events[:n])
	h.events = h.events[n:]
}

// firstAfterLocked is the index of the first event with a revision above rev (revisions
// ascend: a binary search).
func (h *History) firstAfterLocked(rev int64) int {
	i, _ := slices.BinarySearchFunc(h.events, rev+1, func(ev RawEvent, r int64) int { return cmp.Compare(ev.Revision, r) })
	return i
}

// SetCurrent records a revision reached without an event (a restore from snapshot) and drops
// the history before it.
func (h *History) SetCurrent(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.current = rev
	h.compact = rev
	h.events = nil
	h.wakeLocked()
}

// Current returns the latest revision.
func (h *History) Current() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.current
}

// Compact forgets events up to and including rev.
func (h *History) Compact(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= h.compact {
		return
	}
	if rev > h.current {
		rev = h.current
	}
	h.dropLocked(h.firstAfterLocked(rev))
	h.compact = rev
}

// Close ends every watch.
func (h *History) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.notify)
	}
}

func (h *History) wakeLocked() {
	if h.closed {
		return
	}
	close(h.notify)
	h.notify = make(chan struct{})
}

// since returns events of kind after rev, and a channel closed when more arrive.
func (h *History) since(kind string, rev int64) ([]RawEvent, int64, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, rev, nil, ErrClosed
	}
	if rev < h.compact {
		return nil, rev, nil, fmt.Errorf("%w: revision %d, oldest available %d", ErrTooOld, rev, h.compact+1)
	}
	var out []RawEvent
	last := rev
	for _, ev := range h.events[h.firstAfterLocked(rev):] {
		last = ev.Revision
		if kind == "" || ev.Kind == kind {
			out = append(out, ev)
		}
	}
	if h.current > last {
		last = h.current
	}
	return out, last, h.notify, nil
}

// Watch streams decoded events of kind after fromRev (0: from the current revision). See
// Store.Watch.
func (h *History) Watch(ctx context.Context, kind string, fromRev int64) (<-chan Event, error) {
	if fromRev == 0 {
		fromRev = h.Current()
	}
	if _, _, _, err := h.since(kind, fromRev); err != nil {
		return nil, err
	}
	ch := make(chan Event, 64)
	go func() {
		defer close(ch)
		next := fromRev
		for {
			evs, last, wake, err := h.since(kind, next)
			if err != nil {
				if err != ErrClosed {
					select {
					case ch <- Event{Type: Error, Err: err, Revision: next}:
					case <-ctx.Done():
					}
				}
				return
			}
			for _, ev := range evs {
				obj, err := DecodeKind(ev.Kind, ev.Object)
				if err != nil {
					obj = nil
				}
				select {
				case ch <- Event{Type: ev.Type, Object: obj, Revision: ev.Revision}:
				case <-ctx.Done():
					return
				}
			}
			next = last
			select {
			case <-wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

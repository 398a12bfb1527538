package store

import (
	"errors"
	"fmt"
	"testing"
)

func appendN(h *History, from, n int64) {
	for r := from; r < from+n; r++ {
		h.Append(RawEvent{Type: Modified, Kind: "Secret", Name: fmt.Sprint(r % 7), Revision: r, Object: []byte("{}")})
	}
}

// A full history keeps exactly its capacity of the newest events, answers "too old" below
// them and everything after any kept revision, and Compact forgets up to a revision.
func TestHistoryKeepsTheNewestCapacity(t *testing.T) {
	h := NewHistory(100, 0)
	appendN(h, 1, 1000)
	if len(h.events) != 100 || h.events[0].Revision != 901 || h.compact != 900 || h.current != 1000 {
		t.Fatalf("after 1000 appends: %d events from %d, compact %d, current %d; want 100 from 901, compact 900, current 1000",
			len(h.events), h.events[0].Revision, h.compact, h.current)
	}
	if _, _, _, err := h.since("", 899); !errors.Is(err, ErrTooOld) {
		t.Fatalf("since(899) = %v, want ErrTooOld", err)
	}
	for _, rev := range []int64{900, 901, 950, 999, 1000} {
		evs, last, _, err := h.since("", rev)
		if err != nil {
			t.Fatalf("since(%d): %v", rev, err)
		}
		if want := int(1000 - rev); len(evs) != want || last != 1000 {
			t.Fatalf("since(%d): %d events, last %d; want %d, last 1000", rev, len(evs), last, want)
		}
		for i, ev := range evs {
			if ev.Revision != rev+1+int64(i) {
				t.Fatalf("since(%d)[%d] has revision %d", rev, i, ev.Revision)
			}
		}
	}
	evs, _, _, _ := h.since("Nope", 900)
	if len(evs) != 0 {
		t.Fatalf("since for another kind: %d events", len(evs))
	}
	h.Compact(950)
	if h.compact != 950 || len(h.events) != 50 || h.events[0].Revision != 951 {
		t.Fatalf("after Compact(950): compact %d, %d events from %d", h.compact, len(h.events), h.events[0].Revision)
	}
	h.Compact(940) // behind: nothing happens
	if h.compact != 950 {
		t.Fatalf("Compact(940) moved compact to %d", h.compact)
	}
	// The dropped slots are zeroed: nothing older than the kept events stays reachable.
	full := h.events[:cap(h.events)]
	for i := len(h.events); i < len(full); i++ {
		if full[i].Object != nil && full[i].Revision <= h.compact {
			t.Fatalf("slot %d beyond the kept events still holds revision %d", i, full[i].Revision)
		}
	}
	appendN(h, 1001, 10)
	if evs, last, _, err := h.since("", 1000); err != nil || len(evs) != 10 || last != 1010 {
		t.Fatalf("after 10 more: since(1000) = %d events, last %d, %v", len(evs), last, err)
	}
}

// appendCopying is Append's trimming as it was: every append to a full history copied the
// kept events into a new slice. The benchmark's baseline.
func (h *History) appendCopying(ev RawEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
	h.current = ev.Revision
	if len(h.events) > h.capacity {
		drop := len(h.events) - h.capacity
		h.compact = h.events[drop-1].Revision
		h.events = append(h.events[:0:0], h.events[drop:]...)
	}
	h.wakeLocked()
}

// BenchmarkHistoryAppendFull: one append to a full history of the default 10,000 events, as
// every applied write does on every member once a cluster has seen 10,000 writes.
func BenchmarkHistoryAppendFull(b *testing.B) {
	for _, bc := range []struct {
		name   string
		append func(*History, RawEvent)
	}{{"reslice", (*History).Append}, {"copy(before)", (*History).appendCopying}} {
		b.Run(bc.name, func(b *testing.B) {
			h := NewHistory(10000, 0)
			appendN(h, 1, 10000)
			r := int64(10000)
			b.ReportAllocs()
			for b.Loop() {
				r++
				bc.append(h, RawEvent{Type: Modified, Kind: "Secret", Name: "s", Revision: r, Object: []byte("{}")})
			}
		})
	}
}

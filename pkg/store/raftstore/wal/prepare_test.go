package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// fillUntilRotated appends synced batches of entries from index from until the WAL has one
// segment more than it had, and returns the next index.
func fillUntilRotated(t *testing.T, w *WAL, from uint64) uint64 {
	t.Helper()
	segs := len(w.segs)
	for i := from; ; i += 10 {
		must(t, w.Save(hard(1, 1, i), ents(i, i+9, 1)))
		must(t, w.Sync())
		if len(w.segs) > segs {
			return i + 10
		}
		if i > from+100000 {
			t.Fatal("no rotation")
		}
	}
}

// checkZeroFilled: the file has the segment size, every block allocated (not sparse) and,
// past off, nothing but zeros.
func checkZeroFilled(t *testing.T, path string, size int64, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	if int64(len(data)) != size {
		t.Fatalf("%s: %d bytes, want %d", filepath.Base(path), len(data), size)
	}
	if i := firstNonZero(data[off:]); i >= 0 {
		t.Fatalf("%s: non-zero byte at %d", filepath.Base(path), off+int64(i))
	}
	var st syscall.Stat_t
	must(t, syscall.Stat(path, &st))
	if st.Blocks*512 < size {
		t.Fatalf("%s: %d bytes allocated of %d: sparse, not zero-filled", filepath.Base(path), st.Blocks*512, size)
	}
}

func TestNextSegmentIsPreparedAhead(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	w, _ := open(t, dir, Options{SegmentSize: size})
	checkZeroFilled(t, w.Segments()[0], size, 0)
	w.waitPrepared()
	checkZeroFilled(t, filepath.Join(dir, nextReady), size, 0)
	next := fillUntilRotated(t, w, 1)
	if w.created != 1 || w.prepared != 1 {
		t.Fatalf("segments created synchronously %d, taken prepared %d; want 1 (the first) and 1", w.created, w.prepared)
	}
	// The rotation started preparing the one after.
	w.waitPrepared()
	checkZeroFilled(t, filepath.Join(dir, nextReady), size, 0)
	checkZeroFilled(t, w.Segments()[1], size, w.off)
	must(t, w.Close())
	_, st := open(t, dir, Options{SegmentSize: size})
	if n := len(st.Entries); n == 0 || st.Entries[0].GetIndex() != 1 || st.Entries[n-1].GetIndex() != next-1 {
		t.Fatalf("read back %s, want 1..%d", indexes(st.Entries), next-1)
	}
}

func TestRotationCreatesTheSegmentWhenNotReady(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	w, _ := open(t, dir, Options{SegmentSize: size, beforePrepare: func() { <-release }})
	next := fillUntilRotated(t, w, 1)
	if w.created != 2 || w.prepared != 0 {
		t.Fatalf("created %d, prepared %d; want 2 and 0 (the background one held)", w.created, w.prepared)
	}
	checkZeroFilled(t, w.Segments()[1], size, w.off)
	// Once the held preparation finishes, the next rotation takes it.
	free()
	w.waitPrepared()
	next = fillUntilRotated(t, w, next)
	if w.created != 2 || w.prepared != 1 {
		t.Fatalf("created %d, prepared %d; want 2 and 1", w.created, w.prepared)
	}
	must(t, w.Close())
	_, st := open(t, dir, Options{SegmentSize: size})
	if n := len(st.Entries); n == 0 || st.Entries[n-1].GetIndex() != next-1 || st.Entries[0].GetIndex() != 1 {
		t.Fatalf("read back %s, want 1..%d", indexes(st.Entries), next-1)
	}
}

func TestPreparedSegmentSurvivesReopenAndLeftoversGo(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	w, _ := open(t, dir, Options{SegmentSize: size})
	must(t, w.Save(hard(1, 1, 0), ents(1, 3, 1)))
	w.waitPrepared()
	must(t, w.Close())
	// What a crash can leave: a preparation cut short, a segment creation cut short.
	must(t, os.WriteFile(filepath.Join(dir, nextTmp), []byte("half"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, segName(2, 4)+".tmp"), []byte("half"), 0o600))
	w, st := open(t, dir, Options{SegmentSize: size})
	if indexes(st.Entries) != span(1, 3, 1) {
		t.Fatalf("entries %s", indexes(st.Entries))
	}
	names := func() []string {
		des, err := os.ReadDir(dir)
		must(t, err)
		var out []string
		for _, de := range des {
			out = append(out, de.Name())
		}
		sort.Strings(out)
		return out
	}
	want := []string{segName(1, 1), nextReady}
	sort.Strings(want)
	if got := names(); !slices.Equal(got, want) {
		t.Fatalf("files after reopen %v, want %v", got, want)
	}
	fillUntilRotated(t, w, 4)
	if w.prepared != 1 || w.created != 0 {
		t.Fatalf("created %d, prepared %d: the segment left ready was not used", w.created, w.prepared)
	}
	must(t, w.Close())
	// A ready file of another size (the segment size changed) is not used.
	w, _ = open(t, dir, Options{SegmentSize: 2 * size})
	w.waitPrepared()
	if w.prepared != 0 {
		t.Fatal("ready segment of the old size taken")
	}
	checkZeroFilled(t, filepath.Join(dir, nextReady), 2*size, 0)
}

func TestCloseStopsThePreparation(t *testing.T) {
	dir := t.TempDir()
	started := make(chan struct{})
	w, _, err := Open(dir, Options{SegmentSize: 64 << 20, Logger: quiet(), beforePrepare: func() { close(started) }})
	must(t, err)
	<-started
	must(t, w.Close())
	if _, err := os.Stat(filepath.Join(dir, nextTmp)); !os.IsNotExist(err) {
		t.Fatalf("%s left after Close: %v", nextTmp, err)
	}
}

// BenchmarkAppendSync compares one append of a 3 KB entry + fdatasync on a fallocate'd and on
// a zero-filled segment, alternating between the two in the same run (reports p50/p99 of each).
func BenchmarkAppendSync(b *testing.B) {
	modes := []struct {
		name      string
		fallocate bool
	}{{"fallocate", true}, {"zero", false}}
	ws := make([]*WAL, len(modes))
	for i, m := range modes {
		w, _, err := Open(b.TempDir(), Options{Logger: quiet(), fallocate: m.fallocate})
		if err != nil {
			b.Fatal(err)
		}
		w.waitPrepared() // the background zero-fill of the next segment is not measured
		defer w.Close()
		ws[i] = w
	}
	data := bytes.Repeat([]byte{0xab}, 3<<10)
	lat := make([][]time.Duration, len(modes))
	term := uint64(1)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		idx := uint64(n + 1)
		e := []*pb.Entry{{Index: &idx, Term: &term, Data: data}}
		for i := range modes {
			j := (i + n) % len(modes) // alternate which goes first
			start := time.Now()
			if err := ws[j].Save(nil, e); err != nil {
				b.Fatal(err)
			}
			if err := ws[j].Sync(); err != nil {
				b.Fatal(err)
			}
			lat[j] = append(lat[j], time.Since(start))
		}
	}
	b.StopTimer()
	for i, m := range modes {
		l := lat[i]
		slices.Sort(l)
		b.ReportMetric(float64(l[len(l)/2])/1e6, m.name+"-p50-ms")
		b.ReportMetric(float64(l[len(l)*99/100])/1e6, m.name+"-p99-ms")
	}
}

// waitPrepared waits until the preparation running, if any, finished (for tests and
// benchmarks).
func (w *WAL) waitPrepared() {
	if p := w.prep; p != nil {
		<-p.done
	}
}

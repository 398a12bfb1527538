package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

func ents(from, to, term uint64) []*pb.Entry {
	var out []*pb.Entry
	for i := from; i <= to; i++ {
		i, term := i, term
		out = append(out, &pb.Entry{Index: &i, Term: &term, Data: []byte(fmt.Sprintf("entry-%d-%d", i, term))})
	}
	return out
}

func hard(term, vote, commit uint64) *pb.HardState {
	return &pb.HardState{Term: &term, Vote: &vote, Commit: &commit}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, dir string, opts Options) (*WAL, *State) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	w, st, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, st
}

func indexes(es []*pb.Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%d/%d ", e.GetIndex(), e.GetTerm())
	}
	return strings.TrimSpace(b.String())
}

func span(from, to, term uint64) string { return indexes(ents(from, to, term)) }

func TestRoundTripAndOverwrite(t *testing.T) {
	dir := t.TempDir()
	w, st := open(t, dir, Options{SegmentSize: 1 << 20})
	if st.HardState != nil || len(st.Entries) != 0 {
		t.Fatalf("new WAL not empty: %+v", st)
	}
	must(t, w.Save(hard(1, 1, 0), ents(1, 10, 1)))
	must(t, w.Save(hard(2, 2, 5), ents(8, 12, 2))) // raft overwrote 8..10
	must(t, w.Sync())
	must(t, w.Close())
	_, st = open(t, dir, Options{SegmentSize: 1 << 20})
	want := span(1, 7, 1) + " " + span(8, 12, 2)
	if got := indexes(st.Entries); got != want {
		t.Fatalf("entries = %s, want %s", got, want)
	}
	if st.HardState.GetTerm() != 2 || st.HardState.GetCommit() != 5 {
		t.Fatalf("hard state = %v", st.HardState)
	}
	if !bytes.Equal(st.Entries[11].GetData(), []byte("entry-12-2")) {
		t.Fatalf("data = %q", st.Entries[11].GetData())
	}
}

func TestRotationAndRelease(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentSize: 4096})
	for i := uint64(1); i <= 300; i += 10 {
		must(t, w.Save(hard(1, 1, i), ents(i, i+9, 1)))
		must(t, w.Sync())
	}
	segs := len(w.Segments())
	if segs < 3 {
		t.Fatalf("only %d segments after 300 entries in 4 KiB segments", segs)
	}
	must(t, w.ReleaseTo(150))
	if n := len(w.Segments()); n >= segs || n < 2 {
		t.Fatalf("%d segments after releasing to 150, had %d", n, segs)
	}
	must(t, w.Close())
	_, st := open(t, dir, Options{SegmentSize: 4096})
	if first := st.Entries[0].GetIndex(); first > 151 {
		t.Fatalf("first entry %d after release to 150: entries above it were lost", first)
	}
	if last := st.Entries[len(st.Entries)-1].GetIndex(); last != 300 {
		t.Fatalf("last entry %d", last)
	}
	if st.HardState.GetCommit() != 291 {
		t.Fatalf("hard state lost with the released segments: %v", st.HardState)
	}
}

func TestSnapshotResetsLog(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentSize: 1 << 20})
	must(t, w.Save(hard(1, 1, 3), ents(1, 5, 1)))
	must(t, w.SaveSnapshot(hard(3, 0, 100), 100, 3))
	must(t, w.Save(nil, ents(101, 102, 3)))
	must(t, w.Close())
	_, st := open(t, dir, Options{SegmentSize: 1 << 20})
	if st.Snapshot != (Snapshot{100, 3}) || indexes(st.Entries) != span(101, 102, 3) || st.HardState.GetCommit() != 100 {
		t.Fatalf("after snapshot: %+v %s %v", st.Snapshot, indexes(st.Entries), st.HardState)
	}
	if n := len(w.Segments()); n != 1 {
		t.Fatalf("%d segments kept after a snapshot", n)
	}
}

// writeTen writes entries 1..10 in one segment, each synced, and returns the segment's path
// and the offset where entry 10's record starts.
func writeTen(t *testing.T, dir string) (string, int64) {
	w, _ := open(t, dir, Options{SegmentSize: 1 << 20})
	must(t, w.Save(hard(1, 1, 0), nil))
	var last int64
	for i := uint64(1); i <= 10; i++ {
		last = w.off
		must(t, w.Save(nil, ents(i, i, 1)))
		must(t, w.Sync())
	}
	must(t, w.Close())
	return w.Segments()[0], last
}

func TestTornTailIsCutOff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(f *os.File, last int64)
	}{
		{"truncated record", func(f *os.File, last int64) {
			// The last record's header is there, its payload only half: zero the rest.
			_, _ = f.WriteAt(make([]byte, 64), last+12)
		}},
		{"bad checksum", func(f *os.File, last int64) { _, _ = f.WriteAt([]byte{0xff}, last+10) }},
		{"length past the end", func(f *os.File, last int64) { _, _ = f.WriteAt([]byte{0xff, 0xff, 0xff, 0x0f}, last) }},
		{"garbage after the end", func(f *os.File, last int64) { _, _ = f.WriteAt([]byte("xyz"), last+200) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, last := writeTen(t, dir)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			must(t, err)
			tc.damage(f, last)
			must(t, f.Close())
			var logs bytes.Buffer
			w, st := open(t, dir, Options{SegmentSize: 1 << 20, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			want := span(1, 10, 1)
			if tc.name != "garbage after the end" {
				want = span(1, 9, 1)
			}
			if got := indexes(st.Entries); got != want {
				t.Fatalf("entries = %s, want %s", got, want)
			}
			if !strings.Contains(logs.String(), "torn tail cut off") {
				t.Fatalf("no log line for the repair: %q", logs.String())
			}
			// The log goes on after the cut, and the repair holds on the next open.
			must(t, w.Save(nil, ents(uint64(len(st.Entries))+1, 12, 1)))
			must(t, w.Close())
			logs.Reset()
			_, st = open(t, dir, Options{SegmentSize: 1 << 20, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if got := indexes(st.Entries); got != span(1, 12, 1) {
				t.Fatalf("after the repair and more writes: %s", got)
			}
			if logs.Len() != 0 {
				t.Fatalf("second open repaired again: %s", logs.String())
			}
		})
	}
}

func TestCorruptionInTheMiddleRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	path, _ := writeTen(t, dir)
	data, err := os.ReadFile(path)
	must(t, err)
	// Flip a byte in the payload of the third entry's record (the hard state comes first).
	off := 0
	for range 3 {
		off = align8(off + 8 + int(le32(data[off:])))
	}
	data[off+12] ^= 0x40
	must(t, os.WriteFile(path, data, 0o600))
	_, _, err = Open(dir, Options{SegmentSize: 1 << 20, Logger: quiet()})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "followed by a valid record") {
		t.Fatalf("open = %v, want ErrCorrupt naming the damage", err)
	}
	// Nothing was cut: the file is as it was.
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, data) {
		t.Fatal("a refused open changed the segment")
	}
}

func TestDamageInAnEarlierSegmentRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentSize: 4096})
	for i := uint64(1); i <= 200; i += 10 {
		must(t, w.Save(hard(1, 1, i), ents(i, i+9, 1)))
		must(t, w.Sync())
	}
	must(t, w.Close())
	first := w.Segments()[0]
	data, _ := os.ReadFile(first)
	// Cut the first segment's last record short, as a torn write would: harmless at the tail,
	// fatal here, since later segments hold entries after it.
	end := lastNonZero(data)
	must(t, os.WriteFile(first, append(data[:end-3:end-3], make([]byte, len(data)-end+3)...), 0o600))
	_, _, err := Open(dir, Options{SegmentSize: 4096, Logger: quiet()})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not the last segment") {
		t.Fatalf("open = %v, want ErrCorrupt", err)
	}
}

func TestMissingSegmentRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentSize: 4096})
	for i := uint64(1); i <= 300; i += 10 {
		must(t, w.Save(hard(1, 1, i), ents(i, i+9, 1)))
	}
	must(t, w.Close())
	segs := w.Segments()
	must(t, os.Remove(segs[1]))
	_, _, err := Open(dir, Options{SegmentSize: 4096, Logger: quiet()})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open = %v, want ErrCorrupt", err)
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzOpen: whatever a segment holds, Open repairs it, refuses it with ErrCorrupt, or reads it;
// it never panics, and a repaired log opens again without a second repair.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	w, _, err := Open(dir, Options{SegmentSize: 4096, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	_ = w.Save(hard(1, 1, 2), ents(1, 3, 1))
	_ = w.Close()
	seed, _ := os.ReadFile(w.Segments()[0])
	f.Add(bytes.TrimRight(seed, "\x00"))
	f.Add([]byte{})
	f.Add([]byte{8, 0, 0, 0, 1, 2, 3, 4, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		seg := filepath.Join(dir, segName(1, 1))
		if err := os.WriteFile(seg, data, 0o600); err != nil {
			t.Fatal(err)
		}
		w, _, err := Open(dir, Options{SegmentSize: 4096, Logger: quiet()})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open: %v (not ErrCorrupt)", err)
			}
			return
		}
		_ = w.Close()
		var logs bytes.Buffer
		w, _, err = Open(dir, Options{SegmentSize: 4096, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("reopen after a successful open: %v", err)
		}
		_ = w.Close()
		if logs.Len() != 0 {
			t.Fatalf("repaired twice: %s", logs.String())
		}
	})
}

// Package wal is the raft store's write-ahead log: an append-only file of raft entries and
// hard states in preallocated segments, one fdatasync per Sync.
//
// Segments are preallocated by writing zeros, not with fallocate: on ext4 an fallocate'd
// range is "unwritten" extents, and the first write into each of them is a metadata change
// that every fdatasync must then flush through the journal; a zero-filled file is plain
// allocated blocks, and an fdatasync of an append to it writes only the data. Zero-filling
// costs a segment's size in writes, so it is done in a background goroutine one segment
// ahead: the next segment waits, filled and synced, as "next.wal.zero" in the WAL's
// directory, and rotation renames it into place. A rotation that finds it not ready creates
// its segment synchronously.
//
// A segment is a file named "<seq>-<index>.wal" (16 hex digits each: its sequence number and
// the raft index of the first entry that may be written to it), preallocated to SegmentSize.
// It holds records, each 8-byte aligned:
//
//	uint32 length (little endian, of type + payload; 0 marks the end of the written part)
//	uint32 CRC-32C of type + payload
//	byte   type (entry, hard state, snapshot)
//	payload (a protobuf raftpb.Entry or raftpb.HardState, or index and term)
//	zero padding to the next multiple of 8
//
// Every segment starts with the hard state current when it was opened, so releasing older
// segments never loses it. A snapshot record resets the log: the entries read before it are
// dropped, as raft drops its log when it installs a snapshot.
//
// Reading on open: a record that is torn (its length runs past the end of the file, or its
// CRC does not match) or a stretch of non-zero bytes after the end mark, in the last segment
// and with no valid record after it, is what a crash in the middle of a write leaves; it is
// cut off (zeroed) and logged. A bad record followed by a valid one, or any damage in an
// earlier segment, is corruption of data that was synced: Open refuses with ErrCorrupt.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	pb "go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Record types.
const (
	typeEntry     byte = 1
	typeHardState byte = 2
	typeSnapshot  byte = 3
)

const headerSize = 9 // length, crc, type

// DefaultSegmentSize is the size segments are preallocated to.
const DefaultSegmentSize = 64 << 20

// maxRecord bounds one record (raft's entries are far smaller; a larger length is damage).
const maxRecord = 256 << 20

// ErrCorrupt is returned by Open for damage that is not a torn tail.
var ErrCorrupt = errors.New("wal: corrupt")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options tune a WAL.
type Options struct {
	// SegmentSize is the preallocated size of a segment. Default DefaultSegmentSize.
	SegmentSize int64
	// Logger logs repairs. Default slog.Default().
	Logger *slog.Logger

	// fallocate preallocates segments with fallocate instead of zeros (the previous way, kept
	// for BenchmarkAppendSync's comparison).
	fallocate bool
	// beforePrepare, when set, runs in the background goroutine before it prepares the next
	// segment (tests hold it to make a rotation find the segment not ready).
	beforePrepare func()
}

// Names of the next segment while it is prepared and once it is ready (zero-filled, synced).
// Neither ends in ".wal", so neither is ever read as a segment.
const (
	nextTmp   = "next.wal.tmp"
	nextReady = "next.wal.zero"
)

// preparation is the background preparation of the next segment.
type preparation struct {
	done chan struct{} // closed when it finished
	err  error         // set before done is closed
	stop atomic.Bool   // Close asks it to give up
}

// Snapshot is a snapshot record: the log was reset at this index and term.
type Snapshot struct{ Index, Term uint64 }

// State is what Open read back.
type State struct {
	// HardState is the last hard state written (nil if none).
	HardState *pb.HardState
	// Snapshot is the last snapshot record (zero if none).
	Snapshot Snapshot
	// Entries are the live entries, in index order, after the last snapshot record.
	Entries []*pb.Entry
}

type segment struct {
	seq   uint64
	index uint64 // first index that may be written to it
	path  string
}

// WAL is an open write-ahead log. It is not safe for concurrent use.
type WAL struct {
	dir  string
	opts Options
	log  *slog.Logger
	segs []segment // in order; the last is the one written
	f    *os.File  // last segment
	off  int64     // write offset in f
	buf  []byte    // records encoded, not yet written
	hard *pb.HardState
	last uint64 // index of the last entry appended
	// bufFirst is the index of the first entry in buf (0: none).
	bufFirst uint64
	// dirty: bytes were written to f since the last fdatasync.
	dirty bool
	syncs uint64
	// prep is the preparation of the next segment (nil: none running or ready).
	prep *preparation
	// created counts segments created synchronously; prepared those taken ready from the
	// background (for tests).
	created, prepared int
}

func segName(seq, index uint64) string { return fmt.Sprintf("%016x-%016x.wal", seq, index) }

func parseSegName(name string) (seq, index uint64, ok bool) {
	if !strings.HasSuffix(name, ".wal") {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &index); err != nil {
		return 0, 0, false
	}
	return seq, index, true
}

func listSegments(dir string) ([]segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, de := range des {
		if seq, idx, ok := parseSegName(de.Name()); ok && de.Type().IsRegular() {
			segs = append(segs, segment{seq: seq, index: idx, path: filepath.Join(dir, de.Name())})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmpU64(a.seq, b.seq) })
	return segs, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Open opens the WAL in dir, creating it (and dir) if there is none, and reads it back.
func Open(dir string, opts Options) (*WAL, *State, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	w := &WAL{dir: dir, opts: opts, log: opts.Logger}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	if err := w.findPrepared(); err != nil {
		return nil, nil, err
	}
	st := &State{}
	if len(segs) == 0 {
		if err := w.newSegment(1, 1); err != nil {
			w.stopPrepare()
			return nil, nil, err
		}
		return w, st, nil
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, nil, fmt.Errorf("%w: %s: segment %d missing before %s", ErrCorrupt, dir, segs[i-1].seq+1, filepath.Base(segs[i].path))
		}
	}
	var end int64
	for i, sg := range segs {
		last := i == len(segs)-1
		end, err = w.readSegment(sg, st, last)
		if err != nil {
			return nil, nil, err
		}
	}
	w.segs = segs
	lastSeg := segs[len(segs)-1]
	f, err := os.OpenFile(lastSeg.path, os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: open %s: %w", lastSeg.path, err)
	}
	w.startPrepare()
	w.f, w.off = f, end
	w.hard = st.HardState
	if n := len(st.Entries); n > 0 {
		w.last = st.Entries[n-1].GetIndex()
	} else {
		w.last = st.Snapshot.Index
	}
	return w, st, nil
}

func (w *WAL) encode(typ byte, payload []byte) {
	start := len(w.buf)
	w.buf = append(w.buf, make([]byte, 8)...)
	w.buf = append(w.buf, typ)
	w.buf = append(w.buf, payload...)
	body := w.buf[start+8:]
	binary.LittleEndian.PutUint32(w.buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(w.buf[start+4:], crc32.Checksum(body, crcTable))
	if pad := align8(len(w.buf)-start) - (len(w.buf) - start); pad > 0 {
		w.buf = append(w.buf, make([]byte, pad)...)
	}
}

// Save appends entries and, when not nil, the hard state. They are written to the file (not
// synced: call Sync) before it returns.
func (w *WAL) Save(hs *pb.HardState, ents []*pb.Entry) error {
	for _, e := range ents {
		b, err := proto.Marshal(e)
		if err != nil {
			return fmt.Errorf("wal: encode entry %d: %w", e.GetIndex(), err)
		}
		if w.bufFirst == 0 {
			w.bufFirst = e.GetIndex()
		}
		w.encode(typeEntry, b)
		w.last = e.GetIndex()
	}
	if hs != nil {
		b, err := proto.Marshal(hs)
		if err != nil {
			return fmt.Errorf("wal: encode hard state: %w", err)
		}
		w.encode(typeHardState, b)
		w.hard = proto.Clone(hs).(*pb.HardState)
	}
	return w.flush()
}

// SaveSnapshot records that the log was reset at index and term (a snapshot installed from
// the leader), with the hard state, syncs, and releases every earlier segment.
func (w *WAL) SaveSnapshot(hs *pb.HardState, index, term uint64) error {
	if err := w.Sync(); err != nil {
		return err
	}
	if hs != nil {
		w.hard = proto.Clone(hs).(*pb.HardState)
	}
	// The new segment starts with the hard state, then the snapshot record.
	if err := w.rotate(index + 1); err != nil {
		return err
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], index)
	binary.LittleEndian.PutUint64(b[8:], term)
	w.encode(typeSnapshot, b[:])
	w.last = index
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.Sync(); err != nil {
		return err
	}
	return w.removeBefore(len(w.segs) - 1)
}

// flush writes the encoded records to the segment, rotating first when they do not fit.
func (w *WAL) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.off+int64(len(w.buf)) > w.opts.SegmentSize && w.off > 0 {
		pending, first := w.buf, w.bufFirst
		w.buf = nil
		if err := w.Sync(); err != nil {
			return err
		}
		if first == 0 {
			first = w.last + 1
		}
		w.buf = pending
		if err := w.rotate(first); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		return fmt.Errorf("wal: write %s: %w", w.f.Name(), err)
	}
	w.off += int64(len(w.buf))
	w.buf, w.bufFirst = w.buf[:0], 0
	w.dirty = true
	return nil
}

// rotate closes the current segment (synced by the caller) and starts the next, which
// begins with the current hard state. The records in w.buf are kept for it.
func (w *WAL) rotate(index uint64) error {
	pending := w.buf
	w.buf = nil
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("wal: close segment: %w", err)
	}
	if err := w.newSegment(w.segs[len(w.segs)-1].seq+1, index); err != nil {
		return err
	}
	if w.hard != nil {
		b, err := proto.Marshal(w.hard)
		if err != nil {
			return err
		}
		w.encode(typeHardState, b)
	}
	w.buf = append(w.buf, pending...)
	return nil
}

// Sync makes everything written durable: one fdatasync, if anything was written since the
// last.
func (w *WAL) Sync() error {
	if err := w.flush(); err != nil {
		return err
	}
	if !w.dirty {
		return nil
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return fmt.Errorf("wal: fdatasync %s: %w", w.f.Name(), err)
	}
	w.dirty = false
	w.syncs++
	return nil
}

// Syncs counts the fdatasyncs Sync did.
func (w *WAL) Syncs() uint64 { return w.syncs }

// ReleaseTo deletes the segments whose entries are all at or below index (they are in the
// applied state, durably: a snapshot). The segment being written is never deleted.
func (w *WAL) ReleaseTo(index uint64) error {
	n := 0
	for n+1 < len(w.segs) && w.segs[n+1].index <= index+1 {
		n++
	}
	return w.removeBefore(n)
}

func (w *WAL) removeBefore(n int) error {
	if n <= 0 {
		return nil
	}
	for _, sg := range w.segs[:n] {
		if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: release %s: %w", sg.path, err)
		}
	}
	w.segs = slices.Delete(w.segs, 0, n)
	return syncDir(w.dir)
}

// Segments lists the segment files, oldest first (for tests and metrics).
func (w *WAL) Segments() []string {
	out := make([]string, len(w.segs))
	for i, sg := range w.segs {
		out[i] = sg.path
	}
	return out
}

// Close syncs and closes the WAL.
func (w *WAL) Close() error {
	if w.f == nil {
		return nil
	}
	w.stopPrepare()
	err := w.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	return err
}

var _ io.Closer = (*WAL)(nil)

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

// Exists reports whether dir holds a WAL.
func Exists(dir string) bool {
	segs, err := listSegments(dir)
	return err == nil && len(segs) > 0
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

// readSegment reads one segment into st and returns where its written part ends.
func (w *WAL) readSegment(sg segment, st *State, last bool) (int64, error) {
	data, err := os.ReadFile(sg.path)
	if err != nil {
		return 0, fmt.Errorf("wal: read %s: %w", sg.path, err)
	}
	name := filepath.Base(sg.path)
	off := 0
	for {
		typ, payload, next, bad := parseRecord(data, off)
		if bad == "" && typ == 0 {
			// The end mark: the rest must be zeros.
			if off >= len(data) {
				return int64(off), nil
			}
			if i := firstNonZero(data[off:]); i >= 0 {
				bad = fmt.Sprintf("non-zero bytes at offset %d after the end mark", off+i)
			} else {
				return int64(off), nil
			}
		}
		if bad != "" {
			if !last {
				return 0, fmt.Errorf("%w: %s at offset %d: %s (not the last segment: refusing to start; restore this member's data dir or remove the member and join it again empty)", ErrCorrupt, name, off, bad)
			}
			if at := nextValidRecord(data, off+8); at >= 0 {
				return 0, fmt.Errorf("%w: %s at offset %d: %s, followed by a valid record at offset %d (damage in synced data: refusing to start; restore this member's data dir or remove the member and join it again empty)", ErrCorrupt, name, off, bad, at)
			}
			w.log.Warn("wal: torn tail cut off (a crash during a write)", "segment", name, "offset", off, "bytes", len(data)-off, "reason", bad)
			if err := zeroFrom(sg.path, int64(off), int64(lastNonZero(data)+1)); err != nil {
				return 0, err
			}
			return int64(off), nil
		}
		if err := apply(st, typ, payload); err != nil {
			return 0, fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, name, off, err)
		}
		off = next
	}
}

// parseRecord parses the record at off: its type (0 for the end mark), payload and the next
// offset, or why it is bad.
func parseRecord(data []byte, off int) (typ byte, payload []byte, next int, bad string) {
	if off >= len(data) {
		// The end of the file (possibly inside the last record's padding: a file that is
		// not preallocated, cut right after it).
		return 0, nil, off, ""
	}
	if off+8 > len(data) {
		if firstNonZero(data[off:]) >= 0 {
			return 0, nil, 0, "record header cut short"
		}
		return 0, nil, off, ""
	}
	n := int(binary.LittleEndian.Uint32(data[off:]))
	sum := binary.LittleEndian.Uint32(data[off+4:])
	if n == 0 && sum == 0 {
		return 0, nil, off, ""
	}
	if n == 0 || n > maxRecord || off+8+n > len(data) {
		return 0, nil, 0, fmt.Sprintf("record length %d runs past the end of the segment", n)
	}
	body := data[off+8 : off+8+n]
	if crc32.Checksum(body, crcTable) != sum {
		return 0, nil, 0, "record checksum mismatch"
	}
	if body[0] == 0 {
		return 0, nil, 0, "record of type 0"
	}
	return body[0], body[1:], off + align8(8+n), ""
}

// nextValidRecord is the offset of the first record with a good checksum at or after from.
func nextValidRecord(data []byte, from int) int {
	for off := align8(from); off+8 <= len(data); off += 8 {
		if binary.LittleEndian.Uint32(data[off:]) == 0 {
			continue
		}
		if typ, _, _, bad := parseRecord(data, off); bad == "" && typ != 0 {
			return off
		}
	}
	return -1
}

func align8(n int) int { return (n + 7) &^ 7 }

func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

func lastNonZero(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}

func zeroFrom(path string, from, to int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("wal: repair %s: %w", path, err)
	}
	defer f.Close()
	zeros := make([]byte, 64<<10)
	for off := from; off < to; {
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("wal: repair %s: %w", path, err)
		}
		off += n
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("wal: repair %s: fdatasync: %w", path, err)
	}
	return nil
}

func apply(st *State, typ byte, payload []byte) error {
	switch typ {
	case typeEntry:
		e := &pb.Entry{}
		if err := proto.Unmarshal(payload, e); err != nil {
			return fmt.Errorf("decode entry: %w", err)
		}
		i := e.GetIndex()
		if n := len(st.Entries); n > 0 {
			first, last := st.Entries[0].GetIndex(), st.Entries[n-1].GetIndex()
			switch {
			case i == last+1:
			case i > first && i <= last:
				// raft overwrote an uncommitted suffix.
				st.Entries = st.Entries[:i-first]
			case i <= first:
				st.Entries = st.Entries[:0]
			default:
				return fmt.Errorf("entry %d after entry %d: gap in the log", i, last)
			}
		}
		st.Entries = append(st.Entries, e)
	case typeHardState:
		hs := &pb.HardState{}
		if err := proto.Unmarshal(payload, hs); err != nil {
			return fmt.Errorf("decode hard state: %w", err)
		}
		st.HardState = hs
	case typeSnapshot:
		if len(payload) != 16 {
			return fmt.Errorf("snapshot record of %d bytes", len(payload))
		}
		st.Snapshot = Snapshot{Index: binary.LittleEndian.Uint64(payload), Term: binary.LittleEndian.Uint64(payload[8:])}
		st.Entries = st.Entries[:0]
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}

// newSegment opens segment seq whose first entry will be index — the one prepared in the
// background if it is ready, else one created and preallocated now — makes its directory
// entry durable, and starts preparing the one after it.
func (w *WAL) newSegment(seq, index uint64) error {
	path := filepath.Join(w.dir, segName(seq, index))
	from := filepath.Join(w.dir, nextReady)
	if !w.takePrepared() {
		if len(w.segs) > 0 {
			w.log.Info("wal: next segment not prepared yet; creating it now", "segment", filepath.Base(path))
		}
		from = path + ".tmp"
		if err := preallocate(from, w.opts.SegmentSize, w.opts.fallocate, nil); err != nil {
			return err
		}
		w.created++
	} else {
		w.prepared++
	}
	if err := os.Rename(from, path); err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	w.f, w.off = f, 0
	w.segs = append(w.segs, segment{seq: seq, index: index, path: path})
	w.startPrepare()
	return nil
}

// preallocate creates the file path of size bytes, zero-filled (or fallocate'd), and syncs
// it. stop, when it becomes true, makes it give up and remove the file.
func preallocate(path string, size int64, fallocate bool, stop *atomic.Bool) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("wal: create segment: %w", cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if fallocate {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			// Not every file system preallocates: a sparse file of the same size.
			if err := f.Truncate(size); err != nil {
				return fmt.Errorf("wal: size segment: %w", err)
			}
		}
	} else {
		zeros := make([]byte, min(size, 1<<20))
		for off := int64(0); off < size; {
			if stop != nil && stop.Load() {
				return errStopped
			}
			n := min(int64(len(zeros)), size-off)
			if _, err := f.WriteAt(zeros[:n], off); err != nil {
				return fmt.Errorf("wal: zero-fill segment: %w", err)
			}
			off += n
		}
	}
	if err := unix.Fsync(int(f.Fd())); err != nil {
		return fmt.Errorf("wal: sync segment: %w", err)
	}
	return nil
}

var errStopped = errors.New("wal: closed while preparing the next segment")

// findPrepared takes a next segment left ready by an earlier run (it was synced before it
// got its name) if it has the segment size, and removes any other leftover of a preparation
// or of a segment creation that a crash interrupted.
func (w *WAL) findPrepared() error {
	des, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", w.dir, err)
	}
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(w.dir, name)
		if name == nextReady {
			if info, err := de.Info(); err == nil && info.Mode().IsRegular() && info.Size() == w.opts.SegmentSize {
				p := &preparation{done: make(chan struct{})}
				close(p.done)
				w.prep = p
				continue
			}
		} else if name != nextTmp && !strings.HasSuffix(name, ".wal.tmp") {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: remove leftover %s: %w", path, err)
		}
	}
	return nil
}

// startPrepare starts preparing the next segment in the background, unless a preparation is
// running or ready.
func (w *WAL) startPrepare() {
	if w.prep != nil {
		return
	}
	p := &preparation{done: make(chan struct{})}
	w.prep = p
	dir, size, fallocate, hook := w.dir, w.opts.SegmentSize, w.opts.fallocate, w.opts.beforePrepare
	go func() {
		defer close(p.done)
		if hook != nil {
			hook()
		}
		tmp := filepath.Join(dir, nextTmp)
		if err := preallocate(tmp, size, fallocate, &p.stop); err != nil {
			p.err = err
			return
		}
		if err := os.Rename(tmp, filepath.Join(dir, nextReady)); err != nil {
			_ = os.Remove(tmp)
			p.err = fmt.Errorf("wal: prepare next segment: %w", err)
		}
	}()
}

// takePrepared reports whether the next segment is ready (and is now the caller's to rename).
// A preparation still running is left to run: it is the segment after.
func (w *WAL) takePrepared() bool {
	p := w.prep
	if p == nil {
		return false
	}
	select {
	case <-p.done:
	default:
		return false
	}
	w.prep = nil
	if p.err != nil {
		w.log.Warn("wal: preparing the next segment failed; creating it now", "dir", w.dir, "err", p.err)
		return false
	}
	return true
}

// waitPrepared waits until the preparation running, if any, finished (for tests and
// benchmarks).
func (w *WAL) waitPrepared() {
	if p := w.prep; p != nil {
		<-p.done
	}
}

// stopPrepare stops a running preparation and waits for it. A ready segment stays for the
// next Open.
func (w *WAL) stopPrepare() {
	if p := w.prep; p != nil {
		p.stop.Store(true)
		<-p.done
		w.prep = nil
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
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

package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	pb "go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

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

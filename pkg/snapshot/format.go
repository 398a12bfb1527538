package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"time"
)

// The file, byte by byte (integers big-endian):
//
//	magic     8 bytes  "CSTLSNAP"
//	format    uint32   FormatVersion (1)
//	hlen      uint32   length of the header, at most MaxHeaderSize
//	header    hlen bytes of JSON (Header)
//	objects   Header.Objects times: uint32 length (at most MaxObjectSize), then the object's JSON
//	end       8 bytes  "CSTLEND\n"
//	checksum  32 bytes SHA-256 of every byte before it (magic through end)
//
// Nothing may follow the checksum.
const (
	Magic = "CSTLSNAP"
	// EndMagic opens the trailer.
	EndMagic = "CSTLEND\n"
	// FormatVersion is the format this build writes and the newest it reads.
	FormatVersion = 1
	// MaxHeaderSize bounds the header.
	MaxHeaderSize = 1 << 20
	// MaxObjectSize bounds one object (the store's objects are far smaller).
	MaxObjectSize = 64 << 20
	// MaxObjects bounds how many objects a header may announce.
	MaxObjects = 10_000_000
)

// ErrCorrupt is wrapped by every error Decode returns for a file that is not a valid snapshot
// (check it with errors.Is); the message says what is wrong.
var ErrCorrupt = errors.New("snapshot: not a valid snapshot file")

// Header describes a snapshot.
type Header struct {
	// WrittenBy is the version of the program that wrote the file ("constellation-agent v1.2.0").
	WrittenBy string `json:"writtenBy"`
	// ClusterID is the id of the cluster the objects come from.
	ClusterID string `json:"clusterID"`
	// Member names the store member that served the objects.
	Member string `json:"member,omitempty"`
	// Revision is the store revision every object was read at: no object in the file has a
	// resourceVersion above it.
	Revision int64 `json:"revision"`
	// Created is when the objects were read (UTC).
	Created time.Time `json:"created"`
	// Objects is how many objects follow.
	Objects int `json:"objects"`
}

// Object is one object as the store holds it.
type Object struct {
	Kind string
	Name string
	// Data is the object's JSON ({"apiVersion","kind","metadata","spec","status"}).
	Data []byte
}

// Snapshot is a decoded (or to be encoded) snapshot file.
type Snapshot struct {
	Header  Header
	Objects []Object
	// Checksum is the SHA-256 of the file (hex), as its trailer holds it; set by Encode and
	// Decode.
	Checksum string
}

// objectHead is the part of an object Decode checks.
type objectHead struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
}

func less(a, b Object) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	return a.Name < b.Name
}

// Encode writes s to w: objects sorted by kind and name, Header.Objects set to their count.
// It sets s.Checksum.
func (s *Snapshot) Encode(w io.Writer) error {
	objs := append([]Object(nil), s.Objects...)
	sort.Slice(objs, func(i, j int) bool { return less(objs[i], objs[j]) })
	for i := range objs {
		if err := checkObject(objs[i], s.Header.Revision); err != nil {
			return fmt.Errorf("snapshot: encode object %d (%s/%s): %w", i, objs[i].Kind, objs[i].Name, err)
		}
		if i > 0 && !less(objs[i-1], objs[i]) {
			return fmt.Errorf("snapshot: encode: %s/%s appears twice", objs[i].Kind, objs[i].Name)
		}
	}
	s.Objects = objs
	s.Header.Objects = len(objs)
	s.Header.Created = s.Header.Created.UTC()
	hdr, err := json.Marshal(s.Header)
	if err != nil {
		return fmt.Errorf("snapshot: encode header: %w", err)
	}
	h := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	var n [4]byte
	put := func(v int) {
		binary.BigEndian.PutUint32(n[:], uint32(v))
		_, _ = bw.Write(n[:])
	}
	_, _ = bw.WriteString(Magic)
	put(FormatVersion)
	put(len(hdr))
	_, _ = bw.Write(hdr)
	for _, o := range objs {
		put(len(o.Data))
		_, _ = bw.Write(o.Data)
	}
	_, _ = bw.WriteString(EndMagic)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	sum := h.Sum(nil)
	if _, err := w.Write(sum); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	s.Checksum = hex.EncodeToString(sum)
	return nil
}

// Bytes is Encode into memory.
func (s *Snapshot) Bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := s.Encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// checkObject checks that o's JSON is an object of its kind and name, not newer than rev.
func checkObject(o Object, rev int64) error {
	if o.Kind == "" || o.Name == "" {
		return fmt.Errorf("empty kind or name")
	}
	if bytes.IndexByte([]byte(o.Kind), 0) >= 0 || bytes.IndexByte([]byte(o.Name), 0) >= 0 {
		return fmt.Errorf("NUL in kind or name")
	}
	var head objectHead
	if err := json.Unmarshal(o.Data, &head); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	if head.Kind != o.Kind || head.Metadata.Name != o.Name {
		return fmt.Errorf("the JSON says %s/%s", head.Kind, head.Metadata.Name)
	}
	if rv := head.Metadata.ResourceVersion; rv != "" {
		n, err := strconv.ParseInt(rv, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("metadata.resourceVersion %q is not a revision", rv)
		}
		if n > rev {
			return fmt.Errorf("metadata.resourceVersion %d is above the snapshot's revision %d", n, rev)
		}
	}
	return nil
}

// reader reads the file, hashing what it reads and counting the offset.
type reader struct {
	r   *bufio.Reader
	h   hash.Hash
	off int64
}

func (r *reader) full(b []byte, what string) error {
	n, err := io.ReadFull(r.r, b)
	r.h.Write(b[:n])
	r.off += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated: the file ends at byte %d, inside %s", ErrCorrupt, r.off, what)
	}
	if err != nil {
		return fmt.Errorf("snapshot: read %s: %w", what, err)
	}
	return nil
}

// upTo reads n bytes, allocating as they arrive (a corrupt length in a short file costs no
// more memory than the file).
func (r *reader) upTo(n int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.r, n))
	r.h.Write(b)
	r.off += int64(len(b))
	if err != nil {
		return nil, fmt.Errorf("snapshot: read %s: %w", what, err)
	}
	if int64(len(b)) < n {
		return nil, fmt.Errorf("%w: truncated: the file ends at byte %d, inside %s", ErrCorrupt, r.off, what)
	}
	return b, nil
}

func (r *reader) u32(what string) (uint32, error) {
	var b [4]byte
	if err := r.full(b[:], what); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// Decode reads and checks a snapshot file: magic, format version, header, every object, the
// trailer and its checksum, and that nothing follows. Any defect is an error wrapping
// ErrCorrupt that says what is wrong and at which byte.
func Decode(rd io.Reader) (*Snapshot, error) {
	r := &reader{r: bufio.NewReaderSize(rd, 64<<10), h: sha256.New()}
	magic := make([]byte, len(Magic))
	if err := r.full(magic, "the magic number"); err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("%w: it does not start with %q (got %q): not a Constellation snapshot", ErrCorrupt, Magic, magic)
	}
	ver, err := r.u32("the format version")
	if err != nil {
		return nil, err
	}
	if ver == 0 || ver > FormatVersion {
		return nil, fmt.Errorf("%w: format version %d: this build reads versions 1 to %d (written by a newer version?)", ErrCorrupt, ver, FormatVersion)
	}
	hlen, err := r.u32("the header length")
	if err != nil {
		return nil, err
	}
	if hlen == 0 || hlen > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header length %d at byte %d is out of range (1 to %d)", ErrCorrupt, hlen, r.off-4, MaxHeaderSize)
	}
	hb := make([]byte, hlen)
	if err := r.full(hb, "the header"); err != nil {
		return nil, err
	}
	s := &Snapshot{}
	if err := json.Unmarshal(hb, &s.Header); err != nil {
		return nil, fmt.Errorf("%w: header at byte 16: %v", ErrCorrupt, err)
	}
	hd := &s.Header
	if hd.Objects < 0 || hd.Objects > MaxObjects {
		return nil, fmt.Errorf("%w: header announces %d objects (at most %d)", ErrCorrupt, hd.Objects, MaxObjects)
	}
	if hd.Revision < 0 {
		return nil, fmt.Errorf("%w: header has a negative revision %d", ErrCorrupt, hd.Revision)
	}
	for i := 0; i < hd.Objects; i++ {
		at := r.off
		what := fmt.Sprintf("object %d of %d", i+1, hd.Objects)
		n, err := r.u32(what)
		if err != nil {
			return nil, err
		}
		if n > MaxObjectSize {
			return nil, fmt.Errorf("%w: %s at byte %d: length %d is above the limit of %d", ErrCorrupt, what, at, n, MaxObjectSize)
		}
		data, err := r.upTo(int64(n), what)
		if err != nil {
			return nil, err
		}
		var head objectHead
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("%w: %s at byte %d is not JSON: %v", ErrCorrupt, what, at, err)
		}
		o := Object{Kind: head.Kind, Name: head.Metadata.Name, Data: data}
		if err := checkObject(o, hd.Revision); err != nil {
			return nil, fmt.Errorf("%w: %s at byte %d (%s/%s): %v", ErrCorrupt, what, at, o.Kind, o.Name, err)
		}
		if len(s.Objects) > 0 && !less(s.Objects[len(s.Objects)-1], o) {
			prev := s.Objects[len(s.Objects)-1]
			return nil, fmt.Errorf("%w: %s at byte %d (%s/%s) is out of order after %s/%s (duplicate or unsorted)", ErrCorrupt, what, at, o.Kind, o.Name, prev.Kind, prev.Name)
		}
		s.Objects = append(s.Objects, o)
	}
	end := make([]byte, len(EndMagic))
	at := r.off
	if err := r.full(end, "the trailer"); err != nil {
		return nil, err
	}
	if string(end) != EndMagic {
		return nil, fmt.Errorf("%w: expected the trailer %q at byte %d after %d objects, got %q (more objects than the header says, or corrupt)", ErrCorrupt, EndMagic, at, hd.Objects, end)
	}
	want := r.h.Sum(nil)
	got := make([]byte, sha256.Size)
	n, err := io.ReadFull(r.r, got)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("%w: truncated: the file ends at byte %d, inside the trailer's checksum (%d of %d bytes)", ErrCorrupt, r.off+int64(n), n, sha256.Size)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: read the checksum: %w", err)
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("%w: checksum mismatch: the trailer says sha256 %s, the %d bytes before it hash to %s: the file is corrupt", ErrCorrupt, hex.EncodeToString(got), r.off, hex.EncodeToString(want))
	}
	extra, err := io.Copy(io.Discard, r.r)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read: %w", err)
	}
	if extra > 0 {
		return nil, fmt.Errorf("%w: %d unexpected bytes after the trailer (at byte %d)", ErrCorrupt, extra, r.off+int64(sha256.Size))
	}
	s.Checksum = hex.EncodeToString(got)
	return s, nil
}

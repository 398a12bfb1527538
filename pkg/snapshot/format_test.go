package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func obj(kind, name string, rv int) Object {
	return Object{Kind: kind, Name: name, Data: []byte(fmt.Sprintf(
		`{"apiVersion":"constellation/v1","kind":%q,"metadata":{"name":%q,"uid":"u-%s","resourceVersion":"%d"},"spec":{"image":"nginx"},"status":{}}`,
		kind, name, name, rv))}
}

func sample() *Snapshot {
	return &Snapshot{
		Header: Header{WrittenBy: "constellation-agent test", ClusterID: "c0ffee", Member: "a", Revision: 42,
			Created: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)},
		Objects: []Object{obj("Service", "web", 40), obj("Node", "a", 3), obj("Service", "api", 42), obj("Secret", "db", 7)},
	}
}

func encode(t *testing.T, s *Snapshot) []byte {
	t.Helper()
	b, err := s.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	b := encode(t, in)
	out, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if out.Header != in.Header {
		t.Fatalf("header: got %+v, want %+v", out.Header, in.Header)
	}
	if out.Header.Objects != 4 || len(out.Objects) != 4 {
		t.Fatalf("objects: header %d, decoded %d", out.Header.Objects, len(out.Objects))
	}
	want := []string{"Node/a", "Secret/db", "Service/api", "Service/web"}
	for i, o := range out.Objects {
		if got := o.Kind + "/" + o.Name; got != want[i] {
			t.Errorf("object %d: %s, want %s (sorted by kind and name)", i, got, want[i])
		}
		var src Object
		for _, s := range in.Objects {
			if s.Kind == o.Kind && s.Name == o.Name {
				src = s
			}
		}
		if !bytes.Equal(o.Data, src.Data) {
			t.Errorf("%s/%s: data changed:\n got %s\nwant %s", o.Kind, o.Name, o.Data, src.Data)
		}
	}
	if out.Checksum != in.Checksum || len(out.Checksum) != 64 {
		t.Errorf("checksum: decoded %q, encoded %q", out.Checksum, in.Checksum)
	}
	// Deterministic: the same snapshot encodes to the same bytes.
	if b2 := encode(t, sample()); !bytes.Equal(b, b2) {
		t.Error("two encodings of the same snapshot differ")
	}
}

func TestEmptySnapshot(t *testing.T) {
	s := &Snapshot{Header: Header{ClusterID: "x", Revision: 0}}
	out, err := Decode(bytes.NewReader(encode(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Objects) != 0 {
		t.Fatalf("got %d objects", len(out.Objects))
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, objs := range map[string][]Object{
		"duplicate":      {obj("Service", "web", 1), obj("Service", "web", 2)},
		"newer than rev": {obj("Service", "web", 43)},
		"mislabelled":    {{Kind: "Service", Name: "web", Data: obj("Service", "api", 1).Data}},
		"not json":       {{Kind: "Service", Name: "web", Data: []byte("nope")}},
	} {
		s := &Snapshot{Header: Header{Revision: 42}, Objects: objs}
		if _, err := s.Bytes(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// Every truncation of a valid file is refused, and says it is truncated.
func TestTruncatedEverywhere(t *testing.T) {
	b := encode(t, sample())
	for n := 0; n < len(b); n++ {
		_, err := Decode(bytes.NewReader(b[:n]))
		if err == nil {
			t.Fatalf("truncated at %d of %d: decoded", n, len(b))
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("truncated at %d of %d: %v (want a 'truncated' ErrCorrupt)", n, len(b), err)
		}
	}
}

// Flipping any single byte is refused: by a structural check or by the checksum.
func TestBitFlipEverywhere(t *testing.T) {
	b := encode(t, sample())
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x20
		if _, err := Decode(bytes.NewReader(c)); err == nil || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: err %v", i, err)
		}
	}
}

func TestCorruptMessages(t *testing.T) {
	good := encode(t, sample())
	hlen := int(binary.BigEndian.Uint32(good[12:16]))
	firstObj := 16 + hlen
	cases := []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"not a snapshot", func([]byte) []byte { return []byte(`{"kind":"ServiceList"}`) }, "not a Constellation snapshot"},
		{"newer format", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:12], 2); return b }, "format version 2"},
		{"header length", func(b []byte) []byte { binary.BigEndian.PutUint32(b[12:16], MaxHeaderSize+1); return b }, "header length"},
		{"payload edited", func(b []byte) []byte {
			i := bytes.Index(b, []byte("nginx"))
			copy(b[i:], "nginy")
			return b
		}, "checksum mismatch"},
		{"object length huge", func(b []byte) []byte { binary.BigEndian.PutUint32(b[firstObj:], MaxObjectSize+1); return b }, "object 1 of 4"},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0) }, "unexpected bytes after the trailer"},
		{"empty file", func([]byte) []byte { return nil }, "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tc.edit(bytes.Clone(good))))
			if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrCorrupt saying %q", err, tc.want)
			}
		})
	}
}

// A file whose header announces fewer objects than it carries fails at the trailer, even with
// its checksum recomputed (a writer bug, not a disk error).
func TestCountMismatch(t *testing.T) {
	s := sample()
	s.Objects = s.Objects[:1]
	b := encode(t, s)
	_, err := Decode(bytes.NewReader(b[:len(b)-40-4])) // drop trailer and part of the last length
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got %v", err)
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.csnap")
	if err := WriteFile(p, encode(t, sample())); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	s, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Header.Revision != 42 {
		t.Errorf("revision %d", s.Header.Revision)
	}
	if err := os.WriteFile(p, []byte("CSTLSNAP"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error does not name the file: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := sample().Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	empty, _ := (&Snapshot{}).Bytes()
	f.Add(empty)
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// What decodes encodes again, and decodes to the same snapshot.
		again, err := s.Bytes()
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		s2, err := Decode(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if !s2.Header.Created.Equal(s.Header.Created) || len(s2.Objects) != len(s.Objects) || s2.Header.Revision != s.Header.Revision {
			t.Fatalf("re-encoding changed the snapshot: %+v vs %+v", s2.Header, s.Header)
		}
		for i := range s.Objects {
			if !bytes.Equal(s.Objects[i].Data, s2.Objects[i].Data) {
				t.Fatalf("object %d changed", i)
			}
		}
	})
}

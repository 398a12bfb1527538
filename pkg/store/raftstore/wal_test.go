package raftstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore/wal"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

// testdata/v1/raft.db.gz is a one-member data dir written by the version before the
// write-ahead log (raft log and hard state in bbolt; commit 3692d4f): 10 Secrets s0..s9
// created, each updated three times ("value" = 10..39), s9 deleted, with SnapshotEntries 20
// and CatchUpEntries 5, so its log was compacted and still holds entries. Revision 41, applied
// index 42.
func v1DataDir(t *testing.T) string {
	t.Helper()
	gz, err := os.ReadFile("testdata/v1/raft.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	var db bytes.Buffer
	if _, err := db.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "n0")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "raft.db"), db.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func checkV1Objects(t *testing.T, s *Store) {
	t.Helper()
	ctx := tctx(t, 10*time.Second)
	objs, rev, err := s.List(ctx, v1.KindSecret, v1.Selector{})
	if err != nil || len(objs) != 9 || rev != 41 {
		t.Fatalf("List = %d objects at revision %d (%v), want 9 at 41", len(objs), rev, err)
	}
	for i := range 9 {
		o, err := s.Get(ctx, v1.KindSecret, fmt.Sprintf("s%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := o.(*v1.Secret).Spec.Data["value"], fmt.Sprint(30+i); got != want {
			t.Fatalf("s%d value = %q, want %q", i, got, want)
		}
	}
}

// TestOpenConvertsDataDirWithoutWAL opens a data dir written by the previous version: it is
// converted once (logged), serves its objects, takes writes, and reopens without converting
// again; the bbolt log bucket is empty afterwards.
func TestOpenConvertsDataDirWithoutWAL(t *testing.T) {
	dir := v1DataDir(t)
	var logs bytes.Buffer
	cfg := testConfig("n0", dir, freeAddr(t))
	cfg.SnapshotEntries, cfg.CatchUpEntries = 20, 5
	open := func() *Store {
		s, err := Open(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return s
	}
	s := open()
	if !strings.Contains(logs.String(), "converted the raft log from raft.db to the write-ahead log") {
		t.Fatalf("no conversion logged:\n%s", logs.String())
	}
	checkV1Objects(t, s)
	ctx := tctx(t, 10*time.Second)
	for i := range 30 { // past the next snapshot: the WAL is compacted too
		obj := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}}
		obj.Metadata.Name = fmt.Sprintf("new%d", i)
		if _, err := s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := boltView(t, dir, func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketLog).Cursor().First(); k != nil {
			return errors.New("the bbolt log bucket still holds entries")
		}
		if f := tx.Bucket(bucketMeta).Get(keyLogFormat); string(f) != formatWAL {
			return fmt.Errorf("log format %q", f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	s = open()
	defer s.Close()
	if strings.Contains(logs.String(), "converted") {
		t.Fatal("converted a second time")
	}
	objs, rev, err := s.List(ctx, v1.KindSecret, v1.Selector{})
	if err != nil || len(objs) != 39 || rev != 71 {
		t.Fatalf("after reopening: %d objects at revision %d (%v), want 39 at 71", len(objs), rev, err)
	}
}

// TestInterruptedConversionStartsOver: a WAL left by a conversion that crashed before bbolt
// recorded the new format is thrown away and the conversion done again.
func TestInterruptedConversionStartsOver(t *testing.T) {
	dir := v1DataDir(t)
	// What a crash in the middle of a conversion leaves: a WAL with half the records.
	w, _, err := wal.Open(walDir(dir), wal.Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(nil, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	s, err := Open(testConfig("n0", dir, freeAddr(t)), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkV1Objects(t, s)
}

func boltView(t *testing.T, dir string, fn func(*bolt.Tx) error) error {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "raft.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.View(fn)
}

// lastSegment is the newest WAL segment of a data dir.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(walDir(dir), "*.wal"))
	if len(segs) == 0 {
		t.Fatal("no WAL segment")
	}
	return segs[len(segs)-1]
}

// TestTornWALTailIsCutOnOpen: garbage at the end of the written part of the WAL (what a crash
// during an append leaves) is cut off with a log line, and the member starts with every
// acknowledged write.
func TestTornWALTailIsCutOnOpen(t *testing.T) {
	c := newCluster(t, 1, nil)
	for i := range 20 {
		if _, err := c.store(0).Create(tctx(t, 10*time.Second), storetest.Service(fmt.Sprintf("s%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	c.stop(0)
	seg := lastSegment(t, c.nodes[0].dir)
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(data, "\x00"))
	// A record header promising more bytes than were written, then a few of them.
	copy(data[(end+7)&^7:], []byte{200, 0, 0, 0, 1, 2, 3, 4, 1, 'x', 'y'})
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cfg := testConfig(c.nodes[0].name, c.nodes[0].dir, c.nodes[0].addr)
	s, err := Open(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatalf("open after a torn tail: %v", err)
	}
	defer s.Close()
	if !strings.Contains(logs.String(), "torn tail cut off") {
		t.Fatalf("no log line for the repair:\n%s", logs.String())
	}
	objs, _, err := s.List(tctx(t, 10*time.Second), v1.KindService, v1.Selector{})
	if err != nil || len(objs) != 20 {
		t.Fatalf("%d objects after the repair (%v), want 20", len(objs), err)
	}
}

// TestCorruptWALRefusesToOpen: a damaged record followed by good ones is corruption of synced
// data, not a torn write: Open refuses with an error naming the segment and offset.
func TestCorruptWALRefusesToOpen(t *testing.T) {
	c := newCluster(t, 1, nil)
	for i := range 20 {
		if _, err := c.store(0).Create(tctx(t, 10*time.Second), storetest.Service(fmt.Sprintf("s%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	c.stop(0)
	seg := lastSegment(t, c.nodes[0].dir)
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Walk the records (length, crc, then the body, 8-byte aligned) and damage the body of
	// the one in the middle.
	var offs []int
	for off := 0; off+8 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 {
			break
		}
		offs = append(offs, off)
		off = (off + 8 + n + 7) &^ 7
	}
	data[offs[len(offs)/2]+9] ^= 0x01
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(testConfig(c.nodes[0].name, c.nodes[0].dir, c.nodes[0].addr), testLogger(t), nil)
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(seg)) || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("open = %v, want wal.ErrCorrupt naming %s", err, filepath.Base(seg))
	}
}

// TestStaleReadSeesWhatWatchesSaw: applied entries wait up to ApplyCommitDelay for their bbolt
// commit, but watches have their events at once; a Stale read after an event (what a
// controller does) must see the object, on the leader and on a follower.
func TestStaleReadSeesWhatWatchesSaw(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ApplyCommitDelay = time.Hour })
	lead := c.leader()
	for _, i := range []int{lead, (lead + 1) % 3} {
		s := c.store(i)
		rev, err := s.Revision(tctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(tctx(t, 10*time.Second))
		ch, err := s.Watch(wctx, v1.KindService, rev)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("w%d", i)
		if _, err := c.store(lead).Create(tctx(t, 10*time.Second), storetest.Service(name, nil)); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-ch:
			if ev.Object.GetMetadata().Name != name {
				t.Fatalf("event for %s", ev.Object.GetMetadata().Name)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
		if _, err := s.Get(tctx(t, 10*time.Second), v1.KindService, name, store.Stale()); err != nil {
			t.Fatalf("member %d: Stale Get after the event: %v", i, err)
		}
		cancel()
	}
}

// TestStaleReadSeesOwnWrite: a write's outcome reaches its proposer before the batch's bbolt
// commit; a Stale read the proposer makes right after must still see the write (the applied
// index the read waits for covers it), on the leader and through a follower.
func TestStaleReadSeesOwnWrite(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ApplyCommitDelay = time.Hour })
	lead := c.leader()
	for _, i := range []int{lead, (lead + 1) % 3} {
		s := c.store(i)
		for n := range 150 {
			name := fmt.Sprintf("own%d-%d", i, n)
			if _, err := s.Create(tctx(t, 10*time.Second), storetest.Service(name, nil)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(tctx(t, 10*time.Second), v1.KindService, name, store.Stale()); err != nil {
				t.Fatalf("member %d, write %d: Stale Get right after its own Create: %v", i, n, err)
			}
		}
	}
}

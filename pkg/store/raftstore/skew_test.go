package raftstore

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// newerService is a Service as a newer agent would encode it, with fields this version does not
// know.
func newerService(name string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":%q},`+
		`"spec":{"image":"registry.local/web:1","replicas":1,"futureSpec":{"mode":"fast"}},"status":{"futureStatus":true}}`, name)
}

// A follower that catches up by snapshot from a leader holding objects a newer version wrote
// (the snapshot is installed byte for byte) still gets and lists them: reads on the storage path
// are lenient.
func TestSnapshotWithUnknownFields(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 50; cfg.CatchUpEntries = 10 })
	lead := c.leader()
	f := (lead + 1) % 3
	c.net.isolate(c.store(f).ID(), c.ids())
	for i := range 60 {
		m := store.Mutation{Op: store.OpCreate, Kind: v1.KindService, Name: fmt.Sprintf("s%d", i), Object: newerService(fmt.Sprintf("s%d", i)), Now: time.Now().UTC(), UID: store.NewUID()}
		if _, err := c.store(lead).WriteMutation(tctx(t, 10*time.Second), m); err != nil {
			t.Fatal(err)
		}
	}
	c.net.heal()
	c.waitConverged()
	if got := counterValue(c.store(f).met.snapshotsReceived); got < 1 {
		t.Fatalf("follower installed %v snapshots, want at least 1", got)
	}
	// The unknown field travelled in the snapshot: the follower holds the leader's bytes.
	var raw []byte
	_ = c.store(f).db.View(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketObjects).Get(objectKey(v1.KindService, "s0")))
		return nil
	})
	if !strings.Contains(string(raw), "futureSpec") {
		t.Fatalf("follower's copy of s0 lost the field it does not know: %s", raw)
	}
	objs, _, err := c.store(f).List(tctx(t, 10*time.Second), v1.KindService, v1.Selector{}, store.Stale())
	if err != nil || len(objs) != 60 {
		t.Fatalf("follower lists %d objects (err %v), want 60", len(objs), err)
	}
	o, err := c.store(f).Get(tctx(t, 10*time.Second), v1.KindService, "s7")
	if err != nil || o.(*v1.Service).Spec.Image != "registry.local/web:1" {
		t.Fatalf("follower get: %v %v", o, err)
	}
}

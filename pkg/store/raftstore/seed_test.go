package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

// fill writes a history into s: creates, spec and status updates, a delete, a finalizer
// deletion pending, so objects have distinct generations and resourceVersions.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := tctx(t, 30*time.Second)
	for i := range 5 {
		if _, err := s.Create(ctx, storetest.Service(fmt.Sprintf("svc%d", i), map[string]string{"i": strconv.Itoa(i)})); err != nil {
			t.Fatal(err)
		}
	}
	o, err := s.Get(ctx, v1.KindService, "svc1")
	if err != nil {
		t.Fatal(err)
	}
	svc := o.(*v1.Service)
	svc.Spec.Image = "registry.local/web:2"
	if o, err = s.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	svc = o.(*v1.Service)
	svc.Status.ReadyReplicas = 1
	if _, err := s.UpdateStatus(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, v1.KindService, "svc4", ""); err != nil {
		t.Fatal(err)
	}
	fin := storetest.Service("held", nil)
	fin.Metadata.Finalizers = []string{"test/hold"}
	if _, err := s.Create(ctx, fin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, v1.KindService, "held", ""); err != nil {
		t.Fatal(err)
	}
	n := &v1.Node{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindNode}}
	n.Metadata.Name = "n0"
	n.Default()
	if _, err := s.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func objectMap(ex *Export) map[string][]byte {
	m := map[string][]byte{}
	for _, o := range ex.Objects {
		m[o.Kind+"/"+o.Name] = o.Object
	}
	return m
}

// Save from a follower of a 3-member cluster, seed a fresh 3-member cluster with it: every
// object is byte for byte what it was (uid, generation, resourceVersion, creation and deletion
// times, status), on every member of the new cluster, including those that joined after the
// seed (they get it in a raft snapshot); the revision carries on, the cluster id is new.
func TestSeedRoundTrip(t *testing.T) {
	old := newCluster(t, 3, nil)
	follower := (old.leader() + 1) % 3
	fill(t, old.store(follower))
	ex, err := old.store(follower).Export(tctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := old.store(old.leader()).Revision(tctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Revision != rev {
		t.Fatalf("export from a follower at revision %d, the cluster is at %d", ex.Revision, rev)
	}
	if ex.ClusterID != old.store(0).ClusterID() || ex.Member != old.nodes[follower].name {
		t.Errorf("export names cluster %q member %q", ex.ClusterID, ex.Member)
	}
	want := objectMap(ex)
	if len(want) != 6 { // svc0-3, held (pending deletion), node n0
		t.Fatalf("export has %d objects: %v", len(want), keys(want))
	}
	var maxRV int64
	for k, b := range want {
		o, err := store.DecodeObject(b)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		n, _ := strconv.ParseInt(o.GetMetadata().ResourceVersion, 10, 64)
		maxRV = max(maxRV, n)
	}
	if maxRV != ex.Revision { // the last write was a create: its object carries the revision
		t.Errorf("newest object at %d, export at %d", maxRV, ex.Revision)
	}

	seed := &Seed{Revision: ex.Revision, Objects: ex.Objects, Source: "sha256:test"}
	fresh := newCluster(t, 3, func(c *Config) { c.Seed = seed })
	if fresh.store(0).ClusterID() == old.store(0).ClusterID() {
		t.Fatal("the seeded cluster has the old cluster's id")
	}
	fresh.waitConverged()
	for i := range 3 {
		got, err := fresh.store(i).Export(tctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if got.Revision != ex.Revision {
			t.Errorf("member %d at revision %d, want %d", i, got.Revision, ex.Revision)
		}
		gm := objectMap(got)
		if len(gm) != len(want) {
			t.Errorf("member %d has %v, want %v", i, keys(gm), keys(want))
		}
		for k, b := range want {
			if !bytes.Equal(gm[k], b) {
				t.Errorf("member %d: %s differs:\n got %s\nwant %s", i, k, gm[k], b)
			}
		}
	}
	if got := fresh.store(0).SeededFrom(); got != "sha256:test" {
		t.Errorf("SeededFrom on the seeded member: %q", got)
	}
	if got := fresh.store(1).SeededFrom(); got != "" {
		t.Errorf("SeededFrom on a joined member: %q", got)
	}

	// The revision carries on; compare-and-swap works on restored resourceVersions.
	ctx := tctx(t, 10*time.Second)
	o, err := fresh.store(2).Get(ctx, v1.KindService, "svc0")
	if err != nil {
		t.Fatal(err)
	}
	svc := o.(*v1.Service)
	three := int32(3)
	svc.Spec.Replicas = &three
	out, err := fresh.store(2).Update(ctx, svc)
	if err != nil {
		t.Fatalf("update with the restored resourceVersion: %v", err)
	}
	if rv := out.GetMetadata().ResourceVersion; rv != strconv.FormatInt(ex.Revision+1, 10) {
		t.Errorf("first write after the seed at %s, want %d", rv, ex.Revision+1)
	}
	if out.GetMetadata().UID != svc.Metadata.UID || out.GetMetadata().Generation != 2 {
		t.Errorf("uid %s generation %d after update", out.GetMetadata().UID, out.GetMetadata().Generation)
	}
	// The finalizer-held object is still being deleted: removing the finalizer removes it.
	o, err = fresh.store(1).Get(ctx, v1.KindService, "held")
	if err != nil {
		t.Fatal(err)
	}
	if o.GetMetadata().DeletionTimestamp == nil {
		t.Fatal("services/held lost its deletionTimestamp")
	}
	held := o.(*v1.Service)
	held.Metadata.Finalizers = nil
	if _, err := fresh.store(1).Update(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.store(0).Get(ctx, v1.KindService, "held"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("services/held after its last finalizer: %v", err)
	}

	// The seeded member restarts from its data dir as any member does.
	fresh.stop(0)
	fresh.restart(0)
	fresh.waitConverged()
	if _, err := fresh.store(0).Get(tctx(t, 10*time.Second), v1.KindService, "svc3"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got := fresh.store(0).SeededFrom(); got != "sha256:test" {
		t.Errorf("SeededFrom after restart: %q", got)
	}
}

// A member that joins long after the seed, when the leader has compacted its log past many
// writes, still gets every seeded object.
func TestSeedThenLateJoiner(t *testing.T) {
	ex := &Export{Revision: 100, Objects: []ExportObject{}}
	svc := storetest.Service("late", nil)
	svc.Metadata.UID, svc.Metadata.ResourceVersion, svc.Metadata.Generation = "u1", "90", 4
	b, err := v1.Encode(svc)
	if err != nil {
		t.Fatal(err)
	}
	ex.Objects = append(ex.Objects, ExportObject{Kind: v1.KindService, Name: "late", Object: b})
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Seed = &Seed{Revision: ex.Revision, Objects: ex.Objects}
		cfg.SnapshotEntries, cfg.CatchUpEntries = 5, 2
	})
	ctx := tctx(t, 20*time.Second)
	for i := range 12 {
		if _, err := c.store(0).Create(ctx, storetest.Service(fmt.Sprintf("w%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	c.add()
	c.start(1, []string{c.nodes[0].api.URL})
	c.waitConverged()
	o, err := c.store(1).Get(ctx, v1.KindService, "late", store.Stale())
	if err != nil {
		t.Fatal(err)
	}
	if md := o.GetMetadata(); md.UID != "u1" || md.ResourceVersion != "90" || md.Generation != 4 {
		t.Errorf("late joiner has %+v", md)
	}
	if r, _ := c.store(1).Revision(ctx); r != 112 {
		t.Errorf("revision %d, want 112", r)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A member joining a cluster whose log was compacted (no seed) gets a snapshot that names it,
// at once: not the one taken before it was added, which raft refuses.
func TestJoinAfterCompaction(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.SnapshotEntries, cfg.CatchUpEntries = 8, 2 })
	ctx := tctx(t, 20*time.Second)
	for i := range 20 {
		if _, err := c.store(0).Create(ctx, storetest.Service(fmt.Sprintf("w%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if c.store(0).compactIndex == 0 {
		t.Fatal("log was never compacted")
	}
	c.add()
	c.start(1, []string{c.nodes[0].api.URL})
	c.waitConverged()
	objs, _, err := c.store(1).List(ctx, v1.KindService, v1.Selector{}, store.Stale())
	if err != nil || len(objs) != 20 {
		t.Fatalf("joiner has %d services (%v), want 20", len(objs), err)
	}
}

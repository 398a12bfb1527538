package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/ctl"
	"github.com/constellation-sh/constellation/pkg/snapshot"
	"github.com/constellation-sh/constellation/pkg/spec"
	"github.com/constellation-sh/constellation/pkg/store"
)

// testConfig is startAgentStoppable's configuration, for tests that call New themselves.
func testConfig(t *testing.T, name, dataDir string, mut func(*config.Config)) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Node.Name = name
	cfg.DataDir = dataDir
	cfg.API.Address = "127.0.0.1:0"
	cfg.Raft.Address = "127.0.0.1:0"
	cfg.Gossip.Address = "127.0.0.1:0"
	cfg.Docker.Disabled = true
	cfg.Mesh.Disabled = true
	if mut != nil {
		mut(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runCtl runs ctl in-process and returns its exit status, stdout and stderr.
func runCtl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := ctl.Run(context.Background(), args, ctl.Env{Out: &out, Err: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// objectsByKey decodes a snapshot's objects by "Kind/name".
func objectsByKey(s *snapshot.Snapshot) map[string][]byte {
	m := map[string][]byte{}
	for _, o := range s.Objects {
		m[o.Kind+"/"+o.Name] = o.Data
	}
	return m
}

// A cluster with an object of every kind → ctl snapshot save (from a raft agent, through the
// API with an admin token) → ctl snapshot inspect → --restore into a new agent on an empty data
// dir: a new cluster id; every object byte for byte as saved, except the Leases (dropped) and
// the Nodes' status (cleared); the Secret's value readable with the old cluster secret given;
// the revision carries on. Restarting with --restore still set starts from the data dir.
func TestSnapshotSaveRestoreRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents; run without -short")
	}
	raft := raftAgents(t)
	oldDir := filepath.Join(t.TempDir(), "old")
	stopOld, old := startAgentStoppable(t, "snap-a", func(c *config.Config) {
		raft("")(c)
		c.DataDir = oldDir
	})
	c, err := client.New(client.Config{Server: old.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc := spec.Service("web", "registry.local/web:1", spec.Replicas(2), spec.Port("http", 8080))
	rs := &v1.ReplicaSet{Metadata: v1.ObjectMeta{Name: "cache"}, Spec: v1.ReplicaSetSpec{Engine: v1.EngineRedis, Members: []string{"redis"},
		Redis: &v1.RedisReplicaSet{MasterName: "cache", Sentinel: "sentinel"}}}
	rs.Default()
	objs := []v1.Object{
		svc, spec.Service("redis", "registry.local/redis:7"), rs,
		spec.DNSRecord("www", "example.com", "www.example.com", v1.RecordA, "192.0.2.10"),
		spec.Secret("db", map[string]string{"password": "hunter2"}),
	}
	for _, o := range objs {
		o.Default()
		var err error
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err = c.Put(ctx, o, client.PutOptions{}); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("write %s/%s: %v", o.GetTypeMeta().Kind, o.GetMetadata().Name, err)
		}
	}
	eventually(t, "the controller lease", old.controllerLease.IsLeader)
	eventually(t, "the node registered", func() bool { _, err := c.Get(ctx, v1.KindNode, "snap-a"); return err == nil })
	eventually(t, "the keyring", func() bool {
		_, err := old.raft.Get(ctx, v1.KindKeyring, v1.KeyringName)
		return err == nil
	})

	file := filepath.Join(t.TempDir(), "backup.csnap")
	code, out, errOut := runCtl(t, "--server", old.APIAddress(), "--token", "cluster-secret", "snapshot", "save", file)
	if code != 0 {
		t.Fatalf("ctl snapshot save: exit %d: %s%s", code, out, errOut)
	}
	saved, err := snapshot.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fmt.Sprintf("%d objects", len(saved.Objects))) || !strings.Contains(out, saved.Checksum) ||
		!strings.Contains(out, fmt.Sprintf("revision %d", saved.Header.Revision)) {
		t.Errorf("save printed %q", out)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("snapshot file mode %v", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Errorf("%d files beside the snapshot: a temporary file was left", len(ents))
	}
	want := objectsByKey(saved)
	for _, k := range []string{"Service/web", "Service/redis", "ReplicaSet/cache", "DNSRecord/www", "Secret/db", "Node/snap-a", "Lease/controller", "Keyring/" + v1.KeyringName} {
		if want[k] == nil {
			t.Errorf("the snapshot lacks %s (has %d objects)", k, len(want))
		}
	}
	if bytes.Contains(want["Secret/db"], []byte("hunter2")) {
		t.Error("the snapshot holds the Secret's value in plaintext")
	}
	oldCluster := old.raft.ClusterID()
	if saved.Header.ClusterID != oldCluster || saved.Header.Member != "snap-a" || !strings.HasPrefix(saved.Header.WrittenBy, "constellation-agent ") {
		t.Errorf("header %+v", saved.Header)
	}

	code, out, errOut = runCtl(t, "snapshot", "inspect", file)
	if code != 0 {
		t.Fatalf("ctl snapshot inspect: exit %d: %s", code, errOut)
	}
	counts := map[string]int{}
	for _, o := range saved.Objects {
		counts[o.Kind]++
	}
	lines := []string{`Cluster:\s+` + oldCluster, `SHA-256:\s+` + saved.Checksum + ` \(verified\)`, fmt.Sprintf(`Objects:\s+%d`, len(saved.Objects))}
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf(`%s\s+%d`, k, n))
	}
	for _, l := range lines {
		if !regexp.MustCompile(`(?m)^` + l + `$`).MatchString(out) {
			t.Errorf("inspect output lacks a line %q:\n%s", l, out)
		}
	}
	stopOld()

	// Restore into a new agent, under the same node name, on an empty data dir.
	newDir := filepath.Join(t.TempDir(), "new")
	cfg := testConfig(t, "snap-a", newDir, func(c *config.Config) {
		raft("")(c)
		c.Restore = file
		c.RestoreSecretFile = filepath.Join(oldDir, clusterSecretFile)
	})
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if a.raft.ClusterID() == oldCluster {
		t.Fatal("the restored cluster has the old cluster's id")
	}
	// Before Run, no controller has written anything: the store is exactly the seed.
	ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
	ex, err := a.raft.Export(ectx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if ex.Revision != saved.Header.Revision {
		t.Errorf("restored at revision %d, saved at %d", ex.Revision, saved.Header.Revision)
	}
	got := map[string][]byte{}
	for _, o := range ex.Objects {
		got[o.Kind+"/"+o.Name] = o.Object
	}
	for k, b := range want {
		switch {
		case strings.HasPrefix(k, "Lease/"):
			if got[k] != nil {
				t.Errorf("%s was restored; Leases belong to the old cluster", k)
			}
		case strings.HasPrefix(k, "Node/"):
			o, err := store.DecodeObject(got[k])
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			n := o.(*v1.Node)
			wo, _ := store.DecodeObject(b)
			if n.Metadata.UID != wo.GetMetadata().UID || n.Metadata.ResourceVersion != wo.GetMetadata().ResourceVersion {
				t.Errorf("%s: metadata changed: %+v", k, n.Metadata)
			}
			if len(n.Status.Conditions) != 0 || n.Status.Addresses.Gossip != "" || n.Status.RaftRole != "" {
				t.Errorf("%s kept the old cluster's status: %+v", k, n.Status)
			}
		default:
			if !bytes.Equal(got[k], b) {
				t.Errorf("%s differs:\n got %s\nwant %s", k, got[k], b)
			}
		}
	}

	// Running: the Secret opens (its keyring re-wrapped under the new cluster secret), the
	// controller lease is the new cluster's, writes carry on above the restored revision.
	ctx2, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx2) }()
	c2, err := client.New(client.Config{Server: a.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var sec *v1.Secret
	eventually(t, "the restored Secret readable", func() bool {
		sec, err = c2.RevealSecret(ctx, "db")
		return err == nil
	})
	if sec.Spec.Data["password"] != "hunter2" {
		t.Errorf("restored Secret holds %v", sec.Spec.Data)
	}
	eventually(t, "the new cluster's controller lease", a.controllerLease.IsLeader)
	l, err := c2.Get(ctx, v1.KindLease, v1.LeaseController)
	if err != nil {
		t.Fatal(err)
	}
	if wl, _ := store.DecodeObject(want["Lease/controller"]); l.GetMetadata().UID == wl.GetMetadata().UID {
		t.Error("the controller lease is the old cluster's object")
	}
	res, err := c2.Put(ctx, spec.Service("after", "registry.local/x:1"), client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rv, _ := strconv.ParseInt(res.Object.GetMetadata().ResourceVersion, 10, 64); rv <= saved.Header.Revision {
		t.Errorf("a write after the restore at resourceVersion %d, the snapshot is at %d", rv, saved.Header.Revision)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The same --restore left on the command line: the agent starts from its data dir.
	again := testConfig(t, "snap-a", newDir, func(c *config.Config) {
		raft("")(c)
		c.Restore = file
	})
	a2, err := New(again, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("restart with --restore still set: %v", err)
	}
	if a2.raft.ClusterID() != a.raft.ClusterID() {
		t.Errorf("restart changed the cluster id")
	}
	if _, err := a2.raft.Get(ctx, v1.KindService, "after", store.Stale()); err != nil {
		t.Errorf("restart lost a write made after the restore: %v", err)
	}
	a2.shutdownEarly()
}

// dirState is every file under dir with its size and modification time.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			m[p] = fmt.Sprintf("%d %s", info.Size(), info.ModTime())
		}
		return nil
	})
	return m
}

// --restore refuses, with a clear error and without touching the data dir: a truncated file, a
// corrupt one, a data dir that already holds a store, a snapshot with Secrets and no (or the
// wrong) old cluster secret.
func TestRestoreRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents; run without -short")
	}
	raft := raftAgents(t)
	oldDir := filepath.Join(t.TempDir(), "old")
	stop, old := startAgentStoppable(t, "snap-b", func(c *config.Config) {
		raft("")(c)
		c.DataDir = oldDir
	})
	c, err := client.New(client.Config{Server: old.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eventually(t, "the Secret written", func() bool {
		_, err := c.Put(ctx, spec.Secret("db", map[string]string{"password": "hunter2"}), client.PutOptions{})
		return err == nil
	})
	var buf bytes.Buffer
	if _, err := c.Snapshot(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	stop()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	wrongSecret := write("wrong.secret", []byte("not-the-cluster-secret\n"))
	oldSecret := filepath.Join(oldDir, clusterSecretFile)
	cases := []struct {
		name    string
		file    string
		dataDir string
		secret  string
		want    []string
	}{
		{"truncated", write("trunc.csnap", good[:len(good)-10]), "", oldSecret, []string{"truncated", "nothing was changed"}},
		{"corrupt", write("corrupt.csnap", corrupt), "", oldSecret, []string{"not a valid snapshot file", "nothing was changed"}},
		{"data dir holds a store", write("good.csnap", good), oldDir, oldSecret, []string{"already holds a store", "raft.db", "nothing was changed"}},
		{"no old secret", write("good2.csnap", good), "", "", []string{"--restoreSecretFile", "1 Secrets"}},
		{"wrong old secret", write("good3.csnap", good), "", wrongSecret, []string{"does not open with the cluster secret given", "nothing was changed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dd := tc.dataDir
			if dd == "" {
				dd = filepath.Join(t.TempDir(), "data")
			}
			before := dirState(t, dd)
			cfg := testConfig(t, "snap-c", dd, func(c *config.Config) {
				raft("")(c)
				c.Restore = tc.file
				c.RestoreSecretFile = tc.secret
			})
			a, err := New(cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				a.shutdownEarly()
				t.Fatal("the restore was accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := dirState(t, dd); len(after) != len(before) {
				t.Errorf("the data dir changed: %d entries before, %d after", len(before), len(after))
			} else {
				for p, s := range before {
					if after[p] != s && p != dd {
						t.Errorf("%s changed", p)
					}
				}
			}
			if tc.name == "corrupt" && !errors.Is(err, snapshot.ErrCorrupt) {
				t.Errorf("not an ErrCorrupt: %v", err)
			}
		})
	}
}

// ctl snapshot inspect refuses a corrupt file (exit 1, what is wrong on stderr); ctl snapshot
// save against the in-memory store fails and leaves no file behind.
func TestCtlSnapshotRefuses(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.csnap")
	if err := os.WriteFile(p, []byte("CSTLSNAP\x00\x00\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCtl(t, "snapshot", "inspect", p)
	if code == 0 || !strings.Contains(errOut, "truncated") || !strings.Contains(errOut, p) {
		t.Fatalf("inspect of a truncated file: exit %d, stderr %q", code, errOut)
	}
	a, _ := startAgent(t, "snap-mem", nil)
	target := filepath.Join(t.TempDir(), "x.csnap")
	code, _, errOut = runCtl(t, "--server", a.APIAddress(), "snapshot", "save", target)
	if code == 0 || !strings.Contains(errOut, "in-memory store") {
		t.Fatalf("save from the in-memory store: exit %d, stderr %q", code, errOut)
	}
	if ents, _ := os.ReadDir(filepath.Dir(target)); len(ents) != 0 {
		t.Errorf("a failed save left %d files", len(ents))
	}
}

// --snapshot.interval on a raft agent: the controller-lease holder writes decodable snapshots
// into --snapshot.dir, keeps --snapshot.keep of them, and says so in its metrics.
func TestScheduledSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raft agent; run without -short")
	}
	raft := raftAgents(t)
	dir := filepath.Join(t.TempDir(), "snaps")
	_, a := startAgentStoppable(t, "snap-s", func(c *config.Config) {
		raft("")(c)
		c.Snapshot.Interval = time.Second
		c.Snapshot.Keep = 2
		c.Snapshot.Dir = dir
	})
	// Three snapshots written (the failure counter stays at zero) with two kept.
	metric := func(name string) float64 {
		mfs, _ := a.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		return -1
	}
	eventuallyWithin(t, 30*time.Second, "three scheduled snapshots", func() bool {
		files, _ := snapshot.List(dir)
		return metric("constellation_snapshots_written_total") >= 3 && len(files) == 2
	})
	if metric("constellation_snapshot_last_success_timestamp_seconds") < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Error("last success time not set")
	}
	if f := metric("constellation_snapshot_failures_total"); f != 0 {
		t.Errorf("%v failures", f)
	}
	files, err := snapshot.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := snapshot.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if s.Header.ClusterID != a.raft.ClusterID() || s.Header.Member != "snap-s" {
			t.Errorf("%s: header %+v", f, s.Header)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("snapshot dir mode %v", st.Mode().Perm())
	}
}

// A snapshot whose keyring seals nothing (the Secrets were deleted) restores without the old
// cluster secret: the keyring is left out, a new one is made, Secrets written after work.
func TestRestoreKeyringWithoutSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents; run without -short")
	}
	raft := raftAgents(t)
	stop, old := startAgentStoppable(t, "snap-k", func(c *config.Config) { raft("")(c) })
	c, err := client.New(client.Config{Server: old.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	eventually(t, "a Secret written and deleted", func() bool {
		if _, err := c.Put(ctx, spec.Secret("gone", map[string]string{"k": "v"}), client.PutOptions{}); err != nil {
			return false
		}
		_, err := c.Delete(ctx, v1.KindSecret, "gone")
		return err == nil
	})
	file := filepath.Join(t.TempDir(), "k.csnap")
	if code, out, errOut := runCtl(t, "--server", old.APIAddress(), "--token", "cluster-secret", "snapshot", "save", file); code != 0 {
		t.Fatalf("save: %s%s", out, errOut)
	}
	saved, err := snapshot.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if objectsByKey(saved)["Keyring/"+v1.KeyringName] == nil {
		t.Fatal("the snapshot has no keyring: the test proves nothing")
	}
	stop()
	_, a := startAgentStoppable(t, "snap-k", func(c *config.Config) { raft("")(c); c.Restore = file })
	c2, err := client.New(client.Config{Server: a.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new Secret written", func() bool {
		_, err := c2.Put(ctx, spec.Secret("new", map[string]string{"k": "v2"}), client.PutOptions{})
		return err == nil
	})
	sec, err := c2.RevealSecret(ctx, "new")
	if err != nil || sec.Spec.Data["k"] != "v2" {
		t.Fatalf("the new Secret: %v %v", sec, err)
	}
}

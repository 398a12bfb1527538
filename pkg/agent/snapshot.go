package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/internal/atomicfile"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/seal"
	"github.com/constellation-sh/constellation/pkg/snapshot"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
	"github.com/prometheus/client_golang/prometheus"
)

// SnapshotPath is where `ctl snapshot save` downloads a snapshot file of the whole store
// (admin scope, any member: the read is linearizable). docs/snapshots.md.
const SnapshotPath = "/cluster/snapshot"

// restoredFile, in the data dir, names the snapshot (its checksum) the store was seeded from,
// so that an agent restarted with --restore still on its command line starts normally instead
// of refusing its own data dir.
const restoredFile = "restored-from"

// errNoSnapshot: the in-memory store has no raft export.
var errNoSnapshot = errors.New("the in-memory store (--store.memory) takes no snapshots")

// takeSnapshot reads every object at one linearizable revision (raftstore.Export) as the store
// holds them: Secrets stay sealed.
func (a *Agent) takeSnapshot(ctx context.Context) (*snapshot.Snapshot, error) {
	if a.raft == nil {
		return nil, errNoSnapshot
	}
	ex, err := a.raft.Export(ctx)
	if err != nil {
		return nil, err
	}
	s := &snapshot.Snapshot{Header: snapshot.Header{
		WrittenBy: "constellation-agent " + Version, ClusterID: ex.ClusterID, Member: ex.Member,
		Revision: ex.Revision, Created: time.Now().UTC(),
	}}
	s.Objects = make([]snapshot.Object, 0, len(ex.Objects))
	for _, o := range ex.Objects {
		s.Objects = append(s.Objects, snapshot.Object{Kind: o.Kind, Name: o.Name, Data: o.Object})
	}
	return s, nil
}

// serveSnapshot is GET /cluster/snapshot: the snapshot file. It is encoded in memory first
// (Export holds every object in memory anyway), so a failure is a JSON error, not a torn file.
func (a *Agent) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	s, err := a.takeSnapshot(ctx)
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, errNoSnapshot):
			code = http.StatusNotImplemented
		case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed), ctx.Err() != nil:
			code = http.StatusServiceUnavailable
		}
		writeClusterError(w, code, "snapshot: "+err.Error())
		return
	}
	b, err := s.Bytes()
	if err != nil {
		writeClusterError(w, http.StatusInternalServerError, "snapshot: "+err.Error())
		return
	}
	a.log.Info("snapshot served", "revision", s.Header.Revision, "objects", len(s.Objects), "bytes", len(b), "sha256", s.Checksum)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Constellation-Snapshot-Sha256", s.Checksum)
	_, _ = w.Write(b)
}

// snapshotMetrics are the scheduled snapshots' metrics.
type snapshotMetrics struct {
	written     prometheus.Counter
	lastSuccess prometheus.Gauge
	lastBytes   prometheus.Gauge
	failures    prometheus.Counter
}

func newSnapshotMetrics(reg prometheus.Registerer) *snapshotMetrics {
	m := &snapshotMetrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_snapshots_written_total",
			Help: "Scheduled snapshots this agent wrote.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "constellation_snapshot_last_success_timestamp_seconds",
			Help: "Unix time of the last scheduled snapshot this agent wrote (0: none since it started).",
		}),
		lastBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "constellation_snapshot_last_size_bytes",
			Help: "Size of the last scheduled snapshot file this agent wrote.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_snapshot_failures_total",
			Help: "Scheduled snapshots that failed (store unavailable, disk full, ...).",
		}),
	}
	reg.MustRegister(m.written, m.lastSuccess, m.lastBytes, m.failures)
	return m
}

// setupSnapshots adds the scheduled snapshots (--snapshot.interval): on every member, but only
// the holder of the controller lease (its fence: IsLeader turns false before anyone else can
// take the lease) writes, so one member of the cluster does at each tick, into its own
// --snapshot.dir.
func (a *Agent) setupSnapshots() error {
	sc := a.cfg.Snapshot
	if sc.Interval <= 0 {
		return nil
	}
	if a.raft == nil {
		return fmt.Errorf("--snapshot.interval: %w", errNoSnapshot)
	}
	m := newSnapshotMetrics(a.reg)
	sch, err := snapshot.NewSchedule(snapshot.ScheduleConfig{
		Dir: sc.Dir, Interval: sc.Interval, Keep: sc.Keep,
		Take: func(ctx context.Context) (*snapshot.Snapshot, error) {
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			return a.takeSnapshot(ctx)
		},
		Active: a.controllerLease.IsLeader,
		Logger: a.log.With("component", "snapshots"),
		Done: func(path string, err error) {
			if err != nil {
				m.failures.Inc()
				return
			}
			m.written.Inc()
			m.lastSuccess.SetToCurrentTime()
			if st, serr := os.Stat(path); serr == nil {
				m.lastBytes.Set(float64(st.Size()))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("--snapshot: %w", err)
	}
	a.log.Info("scheduled snapshots on", "interval", sc.Interval, "keep", sc.Keep, "dir", sc.Dir)
	a.addComponent("snapshots", sch.Run)
	return nil
}

// restore is what --restore prepared before the store opened.
type restore struct {
	seed     *raftstore.Seed // nil: the data dir was already seeded from this file
	checksum string
	// previous is the cluster secret the snapshot's Secrets are sealed under, when it is not
	// the data dir's own.
	previous string
	// dropKeyring: the snapshot has a keyring but no Secret, and no old cluster secret was
	// given; the keyring is left out (nothing is sealed under it).
	dropKeyring bool
}

// prepareRestore reads and checks --restore before anything is written to the data dir: the
// file must decode (a corrupt or truncated one is refused), the data dir must hold no store
// (unless it was seeded from this very file: a restart with the flag left on), and the
// snapshot's Secrets must open with the cluster secret given.
func (a *Agent) prepareRestore() error {
	path := a.cfg.Restore
	if path == "" {
		return nil
	}
	snap, err := snapshot.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--restore: %w; nothing was changed", err)
	}
	sum := "sha256:" + snap.Checksum
	dir := a.cfg.DataDir
	if fileExists(filepath.Join(dir, raftDBFile)) {
		prev, _ := os.ReadFile(filepath.Join(dir, restoredFile))
		if strings.TrimSpace(string(prev)) == sum {
			a.log.Info("--restore: the data dir was seeded from this snapshot already; starting from it", "file", path)
			a.restore = &restore{checksum: sum}
			if p := a.cfg.RestoreSecretFile; p != "" { // the keyring may not be re-wrapped yet
				if a.restore.previous, err = config.ReadSecretFile(p); err != nil {
					return fmt.Errorf("--restoreSecretFile: %w", err)
				}
			}
			return nil
		}
		return fmt.Errorf("--restore %s: the data dir %s already holds a store (%s): a restore seeds a NEW cluster and only into an empty data dir; move it away first, or start without --restore; nothing was changed",
			path, dir, raftDBFile)
	}
	objs, dropped, err := restoredObjects(snap)
	if err != nil {
		return fmt.Errorf("--restore %s: %w; nothing was changed", path, err)
	}
	a.restore = &restore{checksum: sum, seed: &raftstore.Seed{Revision: snap.Header.Revision, Objects: objs, Source: sum}}
	if err := a.restoreSecret(snap); err != nil {
		a.restore = nil
		return err
	}
	if a.restore.dropKeyring {
		kept := objs[:0]
		for _, o := range objs {
			if o.Kind != v1.KindKeyring {
				kept = append(kept, o)
			}
		}
		a.restore.seed.Objects = kept
		dropped[v1.KindKeyring]++
		a.log.Warn("--restore: the snapshot's keyring is left out: it holds no Secret and no --restoreSecretFile was given; a new keyring is made")
	}
	a.log.Info("restoring a new cluster from a snapshot", "file", path, "from_cluster", snap.Header.ClusterID,
		"revision", snap.Header.Revision, "objects", len(objs), "dropped", dropped, "written_by", snap.Header.WrittenBy, "sha256", snap.Checksum)
	return nil
}

// restoreSecret finds the cluster secret the snapshot's keyring is wrapped under
// (--restoreSecretFile, else the data dir's cluster.secret) and proves it opens every Secret.
func (a *Agent) restoreSecret(snap *snapshot.Snapshot) error {
	var candidates []string
	if p := a.cfg.RestoreSecretFile; p != "" {
		sec, err := config.ReadSecretFile(p)
		if err != nil {
			return fmt.Errorf("--restoreSecretFile: %w", err)
		}
		candidates = append(candidates, sec)
		a.restore.previous = sec
	}
	if sec, err := config.ReadSecretFile(filepath.Join(a.cfg.DataDir, clusterSecretFile)); err == nil {
		candidates = append(candidates, sec)
	}
	var secrets []snapshot.Object
	var ring *snapshot.Object
	for i, o := range snap.Objects {
		switch o.Kind {
		case v1.KindSecret:
			secrets = append(secrets, o)
		case v1.KindKeyring:
			ring = &snap.Objects[i]
		}
	}
	if ring == nil && len(secrets) == 0 {
		return nil
	}
	if len(candidates) == 0 {
		if len(secrets) == 0 {
			// Nothing is sealed under the old keyring, and it cannot be opened: the seal layer
			// makes a new one.
			a.restore.dropKeyring = true
			return nil
		}
		return fmt.Errorf("--restore: the snapshot holds %d Secrets, sealed under the cluster secret of cluster %s: pass that cluster's cluster.secret with --restoreSecretFile (docs/snapshots.md); nothing was changed",
			len(secrets), snap.Header.ClusterID)
	}
	// Open the keyring and every Secret through the seal layer over an in-memory copy: the
	// same code the agent reads them with, so a wrong secret is refused now rather than every
	// read failing later.
	mem := store.NewMemory()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(o snapshot.Object) error {
		obj, err := store.DecodeObject(o.Data)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", o.Kind, o.Name, err)
		}
		obj.GetMetadata().ResourceVersion = ""
		if _, err := mem.Create(ctx, obj); err != nil {
			return fmt.Errorf("%s/%s: %w", o.Kind, o.Name, err)
		}
		return nil
	}
	if ring != nil {
		if err := put(*ring); err != nil {
			return fmt.Errorf("--restore: check Secrets: %w", err)
		}
	}
	for _, o := range secrets {
		if err := put(o); err != nil {
			return fmt.Errorf("--restore: check Secrets: %w", err)
		}
	}
	sealed, err := seal.New(mem, candidates[0], slog.New(slog.DiscardHandler), seal.WithPreviousSecrets(candidates[1:]...))
	if err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	if ring != nil {
		if _, err := sealed.Migrate(ctx); err != nil {
			return fmt.Errorf("--restore: the snapshot's keyring does not open with the cluster secret given (--restoreSecretFile must be the cluster.secret of cluster %s): %w; nothing was changed",
				snap.Header.ClusterID, err)
		}
	}
	for _, o := range secrets {
		if _, err := sealed.Get(ctx, v1.KindSecret, o.Name); err != nil {
			return fmt.Errorf("--restore: secrets/%s does not open with the cluster secret given (--restoreSecretFile must be the cluster.secret of cluster %s): %w; nothing was changed",
				o.Name, snap.Header.ClusterID, err)
		}
	}
	return nil
}

// restoredObjects is what a restore seeds: every object of the snapshot as it was stored
// (uid, generation, resourceVersion, status: Services keep their placement, so each node's
// reconciler finds and adopts the containers that still run), except
//   - Leases: their holders and renew times belong to the old cluster's members; the new
//     cluster elects its own (a stale holder would only delay that by a lease duration, or
//     worse make a node believe it still holds a lease it never renewed here).
//   - Node status: addresses, raft role, gossip state and Ready are what the old cluster
//     observed; the status controller writes them anew from gossip. Node spec (labels,
//     cordon) is kept: it is the operator's intent, and a node that comes back under its
//     name keeps it. Nodes that never come back show NotReady; `ctl node remove` them.
func restoredObjects(snap *snapshot.Snapshot) ([]raftstore.ExportObject, map[string]int, error) {
	dropped := map[string]int{}
	out := make([]raftstore.ExportObject, 0, len(snap.Objects))
	for _, o := range snap.Objects {
		data := o.Data
		switch o.Kind {
		case v1.KindLease:
			dropped[v1.KindLease]++
			continue
		case v1.KindNode:
			obj, err := store.DecodeObject(o.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("nodes/%s: %w", o.Name, err)
			}
			n, ok := obj.(*v1.Node)
			if !ok {
				return nil, nil, fmt.Errorf("nodes/%s: not a Node", o.Name)
			}
			n.Status = v1.NodeStatus{}
			if data, err = v1.Encode(n); err != nil {
				return nil, nil, fmt.Errorf("nodes/%s: %w", o.Name, err)
			}
		}
		out = append(out, raftstore.ExportObject{Kind: o.Kind, Name: o.Name, Object: bytes.Clone(data)})
	}
	return out, dropped, nil
}

// restoreSeed is the raft store's Seed for this start (nil when not restoring).
func (a *Agent) restoreSeed() *raftstore.Seed {
	if a.restore == nil {
		return nil
	}
	return a.restore.seed
}

// restoreSealOptions lets the seal layer unwrap a keyring wrapped under the old cluster's
// secret (it re-wraps it under this cluster's at once).
func (a *Agent) restoreSealOptions() []seal.Option {
	if a.restore == nil || a.restore.previous == "" {
		return nil
	}
	return []seal.Option{seal.WithPreviousSecrets(a.restore.previous)}
}

// finishRestore records, once the store is open, which snapshot seeded it.
func (a *Agent) finishRestore() error {
	if a.restore == nil || a.restore.seed == nil || a.raft == nil {
		return nil
	}
	if got := a.raft.SeededFrom(); got != a.restore.checksum {
		return fmt.Errorf("--restore: the store was not seeded from %s (it says %q)", a.cfg.Restore, got)
	}
	if err := atomicfile.WriteFile(filepath.Join(a.cfg.DataDir, restoredFile), []byte(a.restore.checksum+"\n"), 0o600); err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	a.log.Warn("seeded a NEW cluster from a snapshot: join the other nodes to this one with fresh data dirs (docs/snapshots.md)",
		"cluster", a.raft.ClusterID(), "file", a.cfg.Restore)
	return nil
}

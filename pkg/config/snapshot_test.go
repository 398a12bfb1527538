package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The snapshot, restore and Tailscale options under their documented names, from flags and
// the environment, with their defaults.
func TestSnapshotAndTailscaleOptions(t *testing.T) {
	cfg, err := Load([]string{"--node.name=n1", "--dataDir=/var/lib/c", "--snapshot.interval=1h", "--restore=/backups/a.csnap",
		"--restoreSecretFile=/backups/cluster.secret", "--tailscale.socket=/run/ts.sock", "--node.advertiseAddress=tailscale",
		"--join=tailscale:constellation,10.0.0.1:7480"}, []string{"CONSTELLATION_SNAPSHOT_KEEP=3"})
	if err == nil || !strings.Contains(err.Error(), "--restore: seeds a new cluster; it cannot be combined with --join") {
		t.Fatalf("--restore with --join: %v", err)
	}
	cfg, err = Load([]string{"--node.name=n1", "--dataDir=/var/lib/c", "--snapshot.interval=1h", "--restore=/backups/a.csnap",
		"--restoreSecretFile=/backups/cluster.secret", "--tailscale.socket=/run/ts.sock", "--node.advertiseAddress=tailscale"},
		[]string{"CONSTELLATION_SNAPSHOT_KEEP=3"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Snapshot.Interval != time.Hour || cfg.Snapshot.Keep != 3 || cfg.Snapshot.Dir != filepath.Join("/var/lib/c", "snapshots") {
		t.Errorf("snapshot %+v", cfg.Snapshot)
	}
	if cfg.Restore != "/backups/a.csnap" || cfg.RestoreSecretFile != "/backups/cluster.secret" {
		t.Errorf("restore %q %q", cfg.Restore, cfg.RestoreSecretFile)
	}
	if cfg.Tailscale.Socket != "/run/ts.sock" || cfg.Tailscale.Wait != DefaultTailscaleWait || !cfg.UsesTailscale() {
		t.Errorf("tailscale %+v", cfg.Tailscale)
	}
	def, err := Load([]string{"--node.name=n1", "--dataDir=/d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Snapshot.Interval != 0 || def.Snapshot.Keep != DefaultSnapshotKeep || def.Tailscale.Socket != DefaultTailscaleSocket || def.UsesTailscale() {
		t.Errorf("defaults: %+v %+v", def.Snapshot, def.Tailscale)
	}
	for _, tc := range []struct{ args, want string }{
		{"--snapshot.interval=-1s", "--snapshot.interval: must not be negative"},
		{"--snapshot.interval=10ms", "--snapshot.interval: at least 1s"},
		{"--snapshot.keep=-2", "--snapshot.keep"},
		{"--restoreSecretFile=/x", "only with --restore"},
		{"--join=tailscale:", "Tailscale tag name"},
		{"--tailscale.wait=-1s", "--tailscale.wait"},
	} {
		if _, err := Load([]string{"--node.name=n1", tc.args}, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.args, err, tc.want)
		}
	}
}

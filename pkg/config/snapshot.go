package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// DefaultSnapshotKeep is the default --snapshot.keep.
const DefaultSnapshotKeep = 7

// Snapshot configures scheduled snapshots of the store (docs/snapshots.md).
type Snapshot struct {
	// Interval between scheduled snapshots, written by the holder of the controller lease
	// only. Default 0: off.
	Interval time.Duration `description:"Interval between scheduled snapshots of the store (0: off); only the controller-lease holder writes them"`
	// Keep is how many scheduled snapshot files are kept in Dir, the newest. Default 7.
	Keep int `description:"How many scheduled snapshot files to keep (the newest)"`
	// Dir receives the scheduled snapshots (created 0700). Default DataDir/snapshots.
	Dir string `description:"Directory of scheduled snapshots (default DATADIR/snapshots)"`
}

// validateSnapshot checks --snapshot.* and --restore and fills their defaults.
func (c *Config) validateSnapshot() []error {
	var errs []error
	if c.Snapshot.Interval < 0 {
		errs = append(errs, fmt.Errorf("--snapshot.interval: must not be negative, got %s", c.Snapshot.Interval))
	} else if c.Snapshot.Interval > 0 && c.Snapshot.Interval < time.Second {
		errs = append(errs, fmt.Errorf("--snapshot.interval: at least 1s, got %s", c.Snapshot.Interval))
	}
	switch {
	case c.Snapshot.Keep < 0:
		errs = append(errs, fmt.Errorf("--snapshot.keep: must be at least 1, got %d", c.Snapshot.Keep))
	case c.Snapshot.Keep == 0:
		c.Snapshot.Keep = DefaultSnapshotKeep
	}
	if c.Snapshot.Dir == "" && c.DataDir != "" {
		c.Snapshot.Dir = filepath.Join(c.DataDir, "snapshots")
	} else if c.Snapshot.Dir != "" {
		if abs, err := filepath.Abs(c.Snapshot.Dir); err == nil {
			c.Snapshot.Dir = abs
		}
	}
	if c.Restore != "" {
		if len(c.Join) > 0 {
			errs = append(errs, fmt.Errorf("--restore: seeds a new cluster; it cannot be combined with --join (restore one node, then join the others to it)"))
		}
		if c.Store.Memory {
			errs = append(errs, fmt.Errorf("--restore: needs the replicated store, not --store.memory"))
		}
	} else if c.RestoreSecretFile != "" {
		errs = append(errs, fmt.Errorf("--restoreSecretFile: only with --restore"))
	}
	return errs
}

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FileExt ends every snapshot file Schedule writes.
const FileExt = ".csnap"

// filePrefix starts every snapshot file Schedule writes; retention touches no other file.
const filePrefix = "snapshot-"

// ScheduleConfig configures Schedule.
type ScheduleConfig struct {
	// Dir receives the files (created 0700 if missing). Required.
	Dir string
	// Interval between snapshots. Required, above zero.
	Interval time.Duration
	// Keep is how many snapshot files are kept, the newest; older ones Schedule wrote are
	// removed. Default 7.
	Keep int
	// Take reads the snapshot to write. Required.
	Take func(ctx context.Context) (*Snapshot, error)
	// Clock stamps file names and waits between snapshots: any k8s.io/utils/clock Clock (not
	// imported here: cmd/ctl links this package and must not link k8s.io/utils). Default the
	// wall clock.
	Clock Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Done, when set, is called after each attempt with the file written or the error.
	Done func(path string, err error)
	// Active, when set, is asked at each tick: a false answer skips that tick quietly (no
	// attempt, no Done). The agent passes its controller-lease fence, so that one member of
	// the cluster writes the scheduled snapshots. Default: always active.
	Active func() bool
}

// Schedule takes a snapshot every Interval and keeps the newest Keep files in Dir.
type Schedule struct{ cfg ScheduleConfig }

// NewSchedule checks cfg and fills its defaults.
func NewSchedule(cfg ScheduleConfig) (*Schedule, error) {
	if cfg.Dir == "" {
		return nil, errors.New("snapshot schedule: a directory is required")
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("snapshot schedule: interval must be above zero, got %s", cfg.Interval)
	}
	if cfg.Take == nil {
		return nil, errors.New("snapshot schedule: Take is required")
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 7
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Schedule{cfg: cfg}, nil
}

// Run takes a snapshot every Interval (the first one Interval after it starts) until ctx
// ends. A failed snapshot is logged and retried at the next tick.
func (s *Schedule) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.cfg.Clock.After(s.cfg.Interval):
		}
		if s.cfg.Active != nil && !s.cfg.Active() {
			continue
		}
		path, err := s.Once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.cfg.Logger.Warn("scheduled snapshot failed; trying again at the next interval", "dir", s.cfg.Dir, "err", err)
		} else {
			s.cfg.Logger.Info("scheduled snapshot written", "file", path)
		}
		if s.cfg.Done != nil {
			s.cfg.Done(path, err)
		}
	}
}

// FileName is the name Schedule gives a snapshot taken at t at revision rev: names sort by
// time.
func FileName(t time.Time, rev int64) string {
	return fmt.Sprintf("%s%s-r%d%s", filePrefix, t.UTC().Format("20060102T150405.000Z"), rev, FileExt)
}

// Once takes one snapshot, writes it to Dir and applies retention. It returns the file written.
func (s *Schedule) Once(ctx context.Context) (string, error) {
	snap, err := s.cfg.Take(ctx)
	if err != nil {
		return "", fmt.Errorf("take snapshot: %w", err)
	}
	data, err := snap.Bytes()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return "", fmt.Errorf("snapshot dir: %w", err)
	}
	path := filepath.Join(s.cfg.Dir, FileName(s.cfg.Clock.Now(), snap.Header.Revision))
	if err := WriteFile(path, data); err != nil {
		return "", err
	}
	if err := Prune(s.cfg.Dir, s.cfg.Keep); err != nil {
		return path, err
	}
	return path, nil
}

// List returns the snapshot files Schedule wrote in dir, oldest first.
func List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, filePrefix) && strings.HasSuffix(n, FileExt) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Prune removes all but the newest keep snapshot files Schedule wrote in dir. Other files
// are left alone.
func Prune(dir string, keep int) error {
	files, err := List(dir)
	if err != nil {
		return err
	}
	var errs []error
	for len(files) > keep {
		if err := os.Remove(files[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("retention: %w", err))
		}
		files = files[1:]
	}
	return errors.Join(errs...)
}

// Clock is the part of a k8s.io/utils/clock Clock the schedule reads.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

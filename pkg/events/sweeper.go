package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// SweepStore is what the sweeper reads and deletes Events with.
type SweepStore interface {
	List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error)
	Delete(ctx context.Context, kind, name, resourceVersion string) (v1.Object, error)
}

var _ SweepStore = store.Store(nil)

// SweeperConfig configures the retention sweeper.
type SweeperConfig struct {
	// Store holds the Events. Required.
	Store SweepStore
	// MaxAge: an Event not seen again for this long is deleted. Default 1h.
	MaxAge time.Duration
	// MaxEvents: past this many Events, the least recently seen are deleted. Default 1000.
	MaxEvents int
	// Interval between sweeps. Default 1m.
	Interval time.Duration
	// MaxDeletes bounds the deletes of one sweep, so that a first sweep over a large backlog
	// does not burst into the raft log; the rest goes at the next sweep. Default 200.
	MaxDeletes int
	// IsLeader is checked before every delete: the sweeper runs under the controller Lease and
	// stops deleting as soon as the lease may be lost. Nil: always true (the caller's leader
	// context is then the only fence).
	IsLeader func() bool
	// Clock. Default the real clock.
	Clock clock.WithTicker
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the sweeper's metrics. Nil: not registered.
	Registerer prometheus.Registerer
}

// ErrNotLeader is returned by Sweep when the lease was lost mid-sweep.
var ErrNotLeader = errors.New("events: not the leader, not deleting")

func (c *SweeperConfig) validate() error {
	if c.Store == nil {
		return errors.New("events: sweeper config: Store is required")
	}
	if c.MaxAge <= 0 {
		c.MaxAge = time.Hour
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 1000
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.MaxDeletes <= 0 {
		c.MaxDeletes = 200
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return true }
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Sweeper deletes Events past their retention.
type Sweeper struct {
	cfg     SweeperConfig
	log     *slog.Logger
	deleted *prometheus.CounterVec
}

// NewSweeper returns a sweeper; Run starts it.
func NewSweeper(cfg SweeperConfig) (*Sweeper, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sweeper{cfg: cfg, log: cfg.Logger.With("component", "events-sweeper"),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_events_deleted_total", Help: "Events deleted by the retention sweeper, by cause (age, count).",
		}, []string{"cause"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.deleted); err != nil {
			return nil, fmt.Errorf("events: register metrics: %w", err)
		}
	}
	return s, nil
}

// Run sweeps at once and then every Interval until ctx ends. Call it with the leader context
// of the controller Lease.
func (s *Sweeper) Run(ctx context.Context) {
	t := s.cfg.Clock.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("event sweep incomplete", "deleted", n, "err", err)
		} else if n > 0 {
			s.log.Debug("events swept", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// Victims chooses what a sweep deletes from events at now: every Event last seen more than
// maxAge ago, then the least recently seen until at most maxEvents remain; at most limit in
// all, oldest first. The causes are "age" or "count", by index of the result.
func Victims(events []*v1.Event, now time.Time, maxAge time.Duration, maxEvents, limit int) ([]*v1.Event, []string) {
	sorted := append([]*v1.Event(nil), events...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i].Spec.LastSeen, sorted[j].Spec.LastSeen
		if !a.Equal(b) {
			return a.Before(b)
		}
		return sorted[i].Metadata.Name < sorted[j].Metadata.Name
	})
	var out []*v1.Event
	var causes []string
	for i, e := range sorted {
		if len(out) >= limit {
			break
		}
		switch {
		case now.Sub(e.Spec.LastSeen) > maxAge:
			out, causes = append(out, e), append(causes, "age")
		case len(sorted)-i > maxEvents:
			out, causes = append(out, e), append(causes, "count")
		default:
			return out, causes
		}
	}
	return out, causes
}

// Sweep makes one pass and returns how many Events it deleted.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	objs, _, err := s.cfg.Store.List(ctx, v1.KindEvent, v1.Selector{}, store.Stale())
	if err != nil {
		return 0, fmt.Errorf("list events: %w", err)
	}
	evs := make([]*v1.Event, 0, len(objs))
	for _, o := range objs {
		if e, ok := o.(*v1.Event); ok {
			evs = append(evs, e)
		}
	}
	victims, causes := Victims(evs, s.cfg.Clock.Now(), s.cfg.MaxAge, s.cfg.MaxEvents, s.cfg.MaxDeletes)
	n := 0
	for i, e := range victims {
		if !s.cfg.IsLeader() {
			return n, ErrNotLeader
		}
		// With its resourceVersion: an Event seen again since the list is kept.
		_, err := s.cfg.Store.Delete(ctx, v1.KindEvent, e.Metadata.Name, e.Metadata.ResourceVersion)
		switch {
		case err == nil:
			n++
			s.deleted.WithLabelValues(causes[i]).Inc()
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict):
		default:
			return n, fmt.Errorf("delete events/%s: %w", e.Metadata.Name, err)
		}
	}
	return n, nil
}

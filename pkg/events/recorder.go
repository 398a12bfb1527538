package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Store is what the recorder writes Events with.
type Store = store.Writer

// Config configures a Recorder.
type Config struct {
	// Store receives the Events. Required.
	Store Store
	// Node names the reporting agent in every Event (spec.node). Default "".
	Node string
	// Clock. Default the real clock.
	Clock clock.WithTicker
	// FlushInterval is how often pending series are written. Default 1s.
	FlushInterval time.Duration
	// Debounce is the least time between two writes of one series: occurrences in between
	// only grow its count. Default 30s.
	Debounce time.Duration
	// QPS and Burst bound the recorder's writes to the store (a token bucket shared by every
	// series). Default 2 writes a second, bursts of 30.
	QPS   float64
	Burst int
	// MaxSeries bounds the series held in memory (pending or within their debounce); an
	// occurrence of a new series while it is full is dropped and counted. Default 512.
	MaxSeries int
	// WriteTimeout bounds one store call. Default 5s.
	WriteTimeout time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the recorder's metrics. Nil: not registered.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults for st.
func DefaultConfig(st Store) Config {
	return Config{Store: st, Clock: clock.RealClock{}, FlushInterval: time.Second, Debounce: 30 * time.Second,
		QPS: 2, Burst: 30, MaxSeries: 512, WriteTimeout: 5 * time.Second}
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("events: config: Store is required")
	}
	d := DefaultConfig(c.Store)
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.Debounce <= 0 {
		c.Debounce = d.Debounce
	}
	if c.QPS <= 0 {
		c.QPS = d.QPS
	}
	if c.Burst <= 0 {
		c.Burst = d.Burst
	}
	if c.MaxSeries <= 0 {
		c.MaxSeries = d.MaxSeries
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Recorder turns occurrences into Events. Its methods are safe for concurrent use, and a nil
// *Recorder records nothing, so controllers call it without checking.
type Recorder struct {
	cfg     Config
	log     *slog.Logger
	limiter *rate.Limiter
	metrics *metrics
	// flushMu makes flushes one at a time (Run's and a test's).
	flushMu sync.Mutex

	mu sync.Mutex
	// series by Event name; guarded by mu.
	series map[string]*series
}

// series is one Event as the recorder knows it.
type series struct {
	event     v1.EventSpec // the occurrence's fields; Count and times are below
	firstSeen time.Time    // of the first occurrence this recorder saw
	lastSeen  time.Time    // of the last occurrence
	unsent    int32        // occurrences not written yet
	lastWrite time.Time    // zero: never written by this recorder
}

// New returns a Recorder; Run flushes it.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Recorder{cfg: cfg, log: cfg.Logger.With("component", "events"), metrics: m,
		limiter: rate.NewLimiter(rate.Limit(cfg.QPS), cfg.Burst), series: map[string]*series{}}, nil
}

// Ref names an object for an Event.
func Ref(kind, name string) v1.ObjectReference { return v1.ObjectReference{Kind: kind, Name: name} }

// Eventf records one occurrence of reason on obj, reported by component. It never blocks on
// the store: the Event is written by the next flush, or folded into the series' count.
func (r *Recorder) Eventf(obj v1.ObjectReference, typ v1.EventType, reason v1.EventReason, component, format string, args ...any) {
	if r == nil {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	spec := v1.EventSpec{InvolvedObject: obj, Type: typ, Reason: reason, Message: truncate(msg, v1.MaxEventMessage),
		Component: component, Node: r.cfg.Node}
	name := Name(spec)
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.series[name]
	if s == nil {
		if len(r.series) >= r.cfg.MaxSeries && !r.evictLocked(now) {
			r.metrics.dropped.WithLabelValues("full").Inc()
			return
		}
		s = &series{event: spec, firstSeen: now}
		r.series[name] = s
	}
	s.unsent++
	s.lastSeen = now
	r.metrics.recorded.Inc()
	r.metrics.pending.Set(float64(len(r.series)))
}

// evictLocked forgets one series that has nothing to write and whose debounce is over: its
// next occurrence would be written at once anyway. It reports whether it made room.
func (r *Recorder) evictLocked(now time.Time) bool {
	for name, s := range r.series {
		if s.unsent == 0 && now.Sub(s.lastWrite) >= r.cfg.Debounce {
			delete(r.series, name)
			return true
		}
	}
	return false
}

// Name is the Event name of a series: a prefix of the object's name and a hash of what makes
// occurrences the same (object, type, reason, message, component, node). The same series gets
// the same name on every agent and after a restart, so it is updated, never duplicated.
func Name(spec v1.EventSpec) string {
	h := sha256.New()
	for _, p := range []string{spec.InvolvedObject.Kind, spec.InvolvedObject.Name, string(spec.Type), string(spec.Reason), spec.Message, spec.Component, spec.Node} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	prefix := strings.Trim(spec.InvolvedObject.Name, "-")
	if len(prefix) > 40 {
		prefix = strings.TrimRight(prefix[:40], "-")
	}
	if prefix == "" || !v1.IsDNSLabel(prefix+"-x") {
		return "ev-" + sum
	}
	return prefix + "-" + sum
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Run flushes every FlushInterval until ctx ends, then flushes once more (briefly), so that
// what happened just before a shutdown is not lost when the store still answers.
func (r *Recorder) Run(ctx context.Context) {
	if r == nil {
		return
	}
	t := r.cfg.Clock.NewTicker(r.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), r.cfg.WriteTimeout)
			r.Flush(fctx)
			cancel()
			return
		case <-t.C():
			r.Flush(ctx)
		}
	}
}

// pendingWrite is a series due for a write, copied out of the lock.
type pendingWrite struct {
	name      string
	spec      v1.EventSpec
	count     int32
	firstSeen time.Time
	lastSeen  time.Time
}

// Flush writes the series that are due (pending occurrences, debounce over), oldest first,
// as far as the rate limit allows; the rest wait for a later flush. It returns how many
// Events it wrote.
func (r *Recorder) Flush(ctx context.Context) int {
	if r == nil {
		return 0
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	now := r.cfg.Clock.Now()
	r.mu.Lock()
	var due []pendingWrite
	for name, s := range r.series {
		if s.unsent == 0 {
			if now.Sub(s.lastWrite) >= r.cfg.Debounce {
				delete(r.series, name) // nothing to fold into any more
			}
			continue
		}
		if !s.lastWrite.IsZero() && now.Sub(s.lastWrite) < r.cfg.Debounce {
			continue
		}
		due = append(due, pendingWrite{name: name, spec: s.event, count: s.unsent, firstSeen: s.firstSeen, lastSeen: s.lastSeen})
	}
	r.metrics.pending.Set(float64(len(r.series)))
	r.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if !due[i].lastSeen.Equal(due[j].lastSeen) {
			return due[i].lastSeen.Before(due[j].lastSeen)
		}
		return due[i].name < due[j].name
	})
	wrote := 0
	for _, w := range due {
		if ctx.Err() != nil {
			break
		}
		if !r.limiter.AllowN(now, 1) {
			r.metrics.writes.WithLabelValues("rate_limited").Inc()
			break // the others stay pending, still folding occurrences in
		}
		if err := r.write(ctx, w); err != nil {
			r.log.Debug("event not written, retried at a later flush", "event", w.name, "reason", w.spec.Reason, "err", err)
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists) {
				continue // someone wrote it meanwhile: read it again next time
			}
			break // the store does not answer: do not spend the flush waiting on it
		}
		wrote++
		r.mu.Lock()
		if s := r.series[w.name]; s != nil {
			s.unsent -= w.count // occurrences since the copy stay pending
			s.lastWrite = now
			s.firstSeen = s.lastSeen
		}
		r.mu.Unlock()
	}
	return wrote
}

// write creates the Event or adds to the stored one (compare-and-swap on what it read).
func (r *Recorder) write(ctx context.Context, w pendingWrite) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
	defer cancel()
	obj, err := r.cfg.Store.Get(ctx, v1.KindEvent, w.name, store.Stale())
	switch {
	case errors.Is(err, store.ErrNotFound):
		ev := &v1.Event{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindEvent}, Metadata: v1.ObjectMeta{Name: w.name}, Spec: w.spec}
		ev.Spec.Count, ev.Spec.FirstSeen, ev.Spec.LastSeen = w.count, w.firstSeen.UTC(), w.lastSeen.UTC()
		ev.Default()
		if errs := ev.Validate(); len(errs) > 0 {
			r.metrics.writes.WithLabelValues("invalid").Inc()
			// A bad reason or object name is a bug of the caller: drop the series, say why once.
			r.forget(w.name)
			r.log.Warn("event dropped: invalid", "err", errs.ToAggregate("events", w.name))
			return nil
		}
		if _, err := r.cfg.Store.Create(ctx, ev); err != nil {
			r.metrics.writes.WithLabelValues(outcome(err)).Inc()
			return fmt.Errorf("create events/%s: %w", w.name, err)
		}
		r.metrics.writes.WithLabelValues("created").Inc()
		return nil
	case err != nil:
		r.metrics.writes.WithLabelValues(outcome(err)).Inc()
		return fmt.Errorf("get events/%s: %w", w.name, err)
	}
	ev, ok := obj.(*v1.Event)
	if !ok {
		return fmt.Errorf("events/%s: the store holds a %T", w.name, obj)
	}
	ev.Spec.Count += w.count
	if ev.Spec.Count < w.count { // overflow after two billion flaps: keep the ceiling
		ev.Spec.Count = 1<<31 - 1
	}
	if last := w.lastSeen.UTC(); last.After(ev.Spec.LastSeen) {
		ev.Spec.LastSeen = last
	}
	if _, err := r.cfg.Store.Update(ctx, ev); err != nil {
		r.metrics.writes.WithLabelValues(outcome(err)).Inc()
		return fmt.Errorf("update events/%s: %w", w.name, err)
	}
	r.metrics.writes.WithLabelValues("updated").Inc()
	return nil
}

func (r *Recorder) forget(name string) {
	r.mu.Lock()
	delete(r.series, name)
	r.mu.Unlock()
}

func outcome(err error) string {
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists) {
		return "conflict"
	}
	return "error"
}

// Pending returns how many series the recorder holds (for tests and the status page).
func (r *Recorder) Pending() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.series)
}

type metrics struct {
	recorded prometheus.Counter
	dropped  *prometheus.CounterVec
	writes   *prometheus.CounterVec
	pending  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "constellation_events_recorded_total", Help: "Occurrences recorded (folded into Event series).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_events_dropped_total", Help: "Occurrences dropped by the event recorder, by reason (full: too many series pending).",
		}, []string{"reason"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_events_writes_total", Help: "Event writes to the store by result (created, updated, conflict, error, rate_limited, invalid).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "constellation_events_series", Help: "Event series the recorder holds (pending or within their debounce).",
		}),
	}
	m.dropped.WithLabelValues("full")
	if reg != nil {
		for _, c := range []prometheus.Collector{m.recorded, m.dropped, m.writes, m.pending} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("events: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

package ctrl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Options tune a Loop. Zero values take the defaults given.
type Options struct {
	// Workers reconciling in parallel. Default 1.
	Workers int
	// BaseDelay and MaxDelay bound the per-key exponential backoff after errors.
	// Default 100ms and 30s.
	BaseDelay, MaxDelay time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives reconcile counts and durations labelled by controller.
	Metrics *Metrics
	// Clock times the workqueue's delays (EnqueueAfter, RequeueAfter, the error backoff), so a
	// test can step a fake one (k8s.io/utils/clock/testing) instead of sleeping. Default the
	// real clock.
	Clock clock.WithTicker
}

// Loop feeds keys to one reconciler.
type Loop[K comparable] struct {
	name  string
	rec   reconcile.TypedReconciler[K]
	opts  Options
	queue workqueue.TypedRateLimitingInterface[K]
	log   *slog.Logger
}

// New returns a loop named name (used in logs and metrics) around rec.
func New[K comparable](name string, rec reconcile.TypedReconciler[K], opts Options) *Loop[K] {
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[K](opts.BaseDelay, opts.MaxDelay),
		workqueue.TypedRateLimitingQueueConfig[K]{Name: name, Clock: opts.Clock},
	)
	return &Loop[K]{name: name, rec: rec, opts: opts, queue: q, log: opts.Logger.With("controller", name)}
}

// Enqueue asks for key to be reconciled. Keys already waiting are not duplicated.
func (l *Loop[K]) Enqueue(key K) { l.queue.Add(key) }

// EnqueueAfter asks for key to be reconciled after d.
func (l *Loop[K]) EnqueueAfter(key K, d time.Duration) { l.queue.AddAfter(key, d) }

// Len returns the number of keys waiting.
func (l *Loop[K]) Len() int { return l.queue.Len() }

// Run reconciles until ctx ends, then shuts the queue down and waits for workers. A Loop runs
// once.
func (l *Loop[K]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range l.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	l.queue.ShutDown()
	wg.Wait()
}

func (l *Loop[K]) next(ctx context.Context) bool {
	key, shutdown := l.queue.Get()
	if shutdown {
		return false
	}
	defer l.queue.Done(key)
	start := time.Now()
	res, err := l.reconcileSafely(ctx, key)
	outcome := "success"
	switch {
	case ctx.Err() != nil:
		outcome = "cancelled"
		l.queue.Forget(key)
	case err != nil && errors.Is(err, reconcile.TerminalError(nil)):
		outcome = "terminal"
		l.log.Error("reconcile failed, not retrying", "key", key, "err", err)
		l.queue.Forget(key)
	case err != nil:
		outcome = "error"
		l.log.Warn("reconcile failed, retrying", "key", key, "err", err, "retries", l.queue.NumRequeues(key))
		l.queue.AddRateLimited(key)
	case res.RequeueAfter > 0:
		outcome = "requeue_after"
		l.queue.Forget(key)
		l.queue.AddAfter(key, res.RequeueAfter)
	case res.Requeue: //nolint:staticcheck // honoured for reconcilers that still set it
		outcome = "requeue"
		l.queue.AddRateLimited(key)
	default:
		l.queue.Forget(key)
	}
	if m := l.opts.Metrics; m != nil {
		m.total.WithLabelValues(l.name, outcome).Inc()
		m.duration.WithLabelValues(l.name).Observe(time.Since(start).Seconds())
	}
	return true
}

// reconcileSafely turns a reconciler panic into an error, so one bad object cannot stop the loop.
// The panic is logged with its goroutine's stack (as controller-runtime's panic handlers do: the
// value alone rarely says where it came from) and counted in constellation_reconcile_panics_total.
func (l *Loop[K]) reconcileSafely(ctx context.Context, key K) (res reconcile.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.log.Error("reconcile panicked", "key", key, "panic", r, "stack", string(debug.Stack()))
			if m := l.opts.Metrics; m != nil {
				m.panics.WithLabelValues(l.name).Inc()
			}
			err = fmt.Errorf("reconcile panicked: %v", r)
		}
	}()
	return l.rec.Reconcile(ctx, key)
}

// Metrics are the reconcile metrics shared by every loop of an agent.
type Metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   *prometheus.CounterVec
}

// NewMetrics registers reconcile metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_reconcile_total",
			Help: "Reconciles by controller and outcome.",
		}, []string{"controller", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "constellation_reconcile_duration_seconds",
			Help:    "Time spent in Reconcile by controller.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"controller"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "constellation_reconcile_panics_total",
			Help: "Reconciles that panicked (recovered, logged with their stack, retried), by controller.",
		}, []string{"controller"}),
	}
	if reg != nil {
		reg.MustRegister(m.total, m.duration, m.panics)
	}
	return m
}

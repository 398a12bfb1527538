package ctrl

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestClockTimesTheDelays: with Options.Clock a fake clock, an EnqueueAfter of an hour and a
// RequeueAfter of an hour are reconciled once that clock is stepped past them (with the real
// clock the test would time out), and not before the first step.
func TestClockTimesTheDelays(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	rec := newRecorder(func(_ string, n int) (reconcile.Result, error) {
		if n == 1 {
			return reconcile.Result{RequeueAfter: time.Hour}, nil
		}
		return reconcile.Result{}, nil
	})
	m := NewMetrics(prometheus.NewRegistry())
	l := New[string]("t", rec, Options{Metrics: m, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	l.EnqueueAfter("a", time.Hour)
	if n := rec.count("a"); n != 0 {
		t.Fatalf("reconciled %d times before the clock moved", n)
	}
	// Stepping the clock while waiting: the delaying queue may register its timer after a step.
	eventually(t, "the delayed key", func() bool { clk.Step(time.Hour); return rec.count("a") >= 1 })
	eventually(t, "the requeue after an hour", func() bool { clk.Step(time.Hour); return outcome(m, "success") == 1 })
	if n := rec.count("a"); n != 2 {
		t.Fatalf("reconciled %d times, want 2 (the enqueue, the requeue)", n)
	}
}

package ctrl

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type recorder struct {
	mu      sync.Mutex
	calls   map[string]int
	active  map[string]bool
	overlap atomic.Bool
	fn      func(key string, n int) (reconcile.Result, error)
}

func (r *recorder) Reconcile(_ context.Context, key string) (reconcile.Result, error) {
	r.mu.Lock()
	if r.active[key] {
		r.overlap.Store(true)
	}
	r.active[key] = true
	r.calls[key]++
	n := r.calls[key]
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.active[key] = false
		r.mu.Unlock()
	}()
	time.Sleep(time.Millisecond)
	return r.fn(key, n)
}

func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[key]
}

func newRecorder(fn func(string, int) (reconcile.Result, error)) *recorder {
	return &recorder{calls: map[string]int{}, active: map[string]bool{}, fn: fn}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// outcome reads constellation_reconcile_total for the test loop "t".
func outcome(m *Metrics, o string) float64 {
	return testutil.ToFloat64(m.total.WithLabelValues("t", o))
}

// assertSettled checks that nothing is scheduled for key: not waiting, and no retry (a retry
// goes through AddRateLimited, which NumRequeues counts until Forget).
func assertSettled(t *testing.T, l *Loop[string], key string) {
	t.Helper()
	if n, r := l.queue.Len(), l.queue.NumRequeues(key); n != 0 || r != 0 {
		t.Fatalf("key %s still scheduled: %d waiting, %d requeues", key, n, r)
	}
}

func TestErrorRetriesUntilSuccess(t *testing.T) {
	rec := newRecorder(func(_ string, n int) (reconcile.Result, error) {
		if n < 3 {
			return reconcile.Result{}, errors.New("transient")
		}
		return reconcile.Result{}, nil
	})
	m := NewMetrics(prometheus.NewRegistry())
	l := New[string]("t", rec, Options{BaseDelay: time.Millisecond, Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	l.Enqueue("a")
	// The loop counts an outcome once it has decided what to do with the key: after the
	// success it forgot the key and scheduled nothing, so no fourth call can come.
	eventually(t, "the success handled", func() bool { return outcome(m, "success") == 1 })
	assertSettled(t, l, "a")
	if got, errs := rec.count("a"), outcome(m, "error"); got != 3 || errs != 2 {
		t.Fatalf("reconciled %d times (%v errors) after success, want 3 (2)", got, errs)
	}
	cancel()
	<-done
}

func TestTerminalErrorIsNotRetried(t *testing.T) {
	rec := newRecorder(func(string, int) (reconcile.Result, error) {
		return reconcile.Result{}, reconcile.TerminalError(errors.New("bad spec"))
	})
	m := NewMetrics(prometheus.NewRegistry())
	l := New[string]("t", rec, Options{BaseDelay: time.Millisecond, Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	l.Enqueue("a")
	eventually(t, "the terminal error handled", func() bool { return outcome(m, "terminal") == 1 })
	assertSettled(t, l, "a")
	if got, errs := rec.count("a"), outcome(m, "error"); got != 1 || errs != 0 {
		t.Fatalf("terminal error retried: %d calls, %v counted as retryable", got, errs)
	}
}

func TestRequeueAfterPolls(t *testing.T) {
	rec := newRecorder(func(string, int) (reconcile.Result, error) {
		return reconcile.Result{RequeueAfter: 10 * time.Millisecond}, nil
	})
	l := New[string]("t", rec, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	l.Enqueue("a")
	eventually(t, "polling", func() bool { return rec.count("a") >= 3 })
}

func TestNoTwoWorkersHoldTheSameKeyAndPanicsAreContained(t *testing.T) {
	rec := newRecorder(func(key string, n int) (reconcile.Result, error) {
		if key == "boom" && n == 1 {
			panic("bug")
		}
		return reconcile.Result{}, nil
	})
	l := New[string]("t", rec, Options{Workers: 4, BaseDelay: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	l.Enqueue("boom")
	for range 200 {
		l.Enqueue("a")
		l.Enqueue("b")
		time.Sleep(100 * time.Microsecond)
	}
	eventually(t, "the panicking key retried", func() bool { return rec.count("boom") >= 2 })
	if rec.overlap.Load() {
		t.Fatal("two workers reconciled the same key at once")
	}
	if rec.count("a") >= 200 {
		t.Fatalf("keys were not de-duplicated: %d reconciles of a", rec.count("a"))
	}
}

// panicsHere is a named function, so the test can look for it in the logged stack.
func panicsHere() { panic("nil map in the planner") }

func TestPanicIsLoggedWithItsStackAndCounted(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	reg := prometheus.NewRegistry()
	rec := newRecorder(func(key string, n int) (reconcile.Result, error) {
		if n == 1 {
			panicsHere()
		}
		return reconcile.Result{}, nil
	})
	l := New[string]("panicky", rec, Options{Logger: log, Metrics: NewMetrics(reg), BaseDelay: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	l.Enqueue("k")
	eventually(t, "the panicking key retried", func() bool { return rec.count("k") >= 2 })

	var line struct {
		Msg, Panic, Stack, Key string
	}
	for _, ln := range strings.Split(buf.String(), "\n") {
		if strings.Contains(ln, "reconcile panicked") {
			if err := json.Unmarshal([]byte(ln), &line); err != nil {
				t.Fatalf("log line %q: %v", ln, err)
			}
		}
	}
	if line.Panic != "nil map in the planner" || line.Key != "k" {
		t.Fatalf("panic log line: %+v\nlog:\n%s", line, buf.String())
	}
	if !strings.Contains(line.Stack, "ctrl.panicsHere") || !strings.Contains(line.Stack, "loop_test.go") {
		t.Fatalf("the logged stack does not show where the panic came from:\n%s", line.Stack)
	}
	if got := counterValue(t, reg, "constellation_reconcile_panics_total", "panicky"); got != 1 {
		t.Fatalf("constellation_reconcile_panics_total{controller=panicky} = %v, want 1", got)
	}
}

// counterValue reads a counter from reg by name and controller label; 0 when absent.
func counterValue(t *testing.T, reg prometheus.Gatherer, name, controller string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

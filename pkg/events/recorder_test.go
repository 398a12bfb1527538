package events

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// countingStore counts the writes that reach the store.
type countingStore struct {
	Store
	mu     sync.Mutex
	writes int
}

func (c *countingStore) Create(ctx context.Context, o v1.Object) (v1.Object, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Store.Create(ctx, o)
}

func (c *countingStore) Update(ctx context.Context, o v1.Object) (v1.Object, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Store.Update(ctx, o)
}

func (c *countingStore) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func newRecorder(t *testing.T, st Store, clk *clocktesting.FakeClock, change func(*Config)) *Recorder {
	t.Helper()
	cfg := Config{Store: st, Node: "n1", Clock: clk, Logger: quiet(), Registerer: prometheus.NewRegistry()}
	if change != nil {
		change(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func events(t *testing.T, st store.Store) []*v1.Event {
	t.Helper()
	objs, _, err := st.List(context.Background(), v1.KindEvent, v1.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*v1.Event, len(objs))
	for i, o := range objs {
		out[i] = o.(*v1.Event)
	}
	return out
}

var web = Ref(v1.KindService, "web")

// A container flapping every second for a minute is one Event whose count grows, written at
// the first flush and then at most once per debounce.
func TestFlappingIsOneEventWithACount(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	st := &countingStore{Store: mem}
	clk := clocktesting.NewFakeClock(t0)
	r := newRecorder(t, st, clk, func(c *Config) { c.Debounce = 30 * time.Second })

	r.Eventf(web, v1.EventWarning, v1.EventRestarted, "node", "replica %d restarted after exit code %d", 0, 137)
	if n := r.Flush(ctx); n != 1 {
		t.Fatalf("first flush wrote %d events, want 1", n)
	}
	evs := events(t, mem)
	if len(evs) != 1 {
		t.Fatalf("got %d events", len(evs))
	}
	e := evs[0]
	if e.Spec.Count != 1 || e.Spec.Reason != v1.EventRestarted || e.Spec.Type != v1.EventWarning || e.Spec.Node != "n1" ||
		e.Spec.Message != "replica 0 restarted after exit code 137" || !e.Spec.FirstSeen.Equal(t0) || e.Spec.InvolvedObject != web {
		t.Fatalf("event %+v", e.Spec)
	}
	if e.Metadata.Labels[v1.LabelEventKind] != "Service" || e.Metadata.Labels[v1.LabelEventName] != "web" {
		t.Fatalf("labels %v", e.Metadata.Labels)
	}

	// 59 more flaps, one a second, a flush after each: the debounce holds them.
	for i := 1; i < 60; i++ {
		clk.Step(time.Second)
		r.Eventf(web, v1.EventWarning, v1.EventRestarted, "node", "replica %d restarted after exit code %d", 0, 137)
		r.Flush(ctx)
	}
	// Writes at t0 (count 1) and t0+30s (count 31: 30 more); the last 29 are pending.
	if got := st.n(); got != 2 {
		t.Fatalf("%d store writes for 60 flaps, want 2", got)
	}
	if e := events(t, mem)[0]; e.Spec.Count != 31 || !e.Spec.LastSeen.Equal(t0.Add(30*time.Second)) || !e.Spec.FirstSeen.Equal(t0) {
		t.Fatalf("after 59s: count %d, lastSeen %s, firstSeen %s", e.Spec.Count, e.Spec.LastSeen, e.Spec.FirstSeen)
	}
	clk.Step(time.Second) // t0+60s: debounce over since the write at t0+30s
	r.Flush(ctx)
	if e := events(t, mem)[0]; e.Spec.Count != 60 || !e.Spec.LastSeen.Equal(t0.Add(59*time.Second)) {
		t.Fatalf("after 60s: count %d, lastSeen %s", e.Spec.Count, e.Spec.LastSeen)
	}
	if got := st.n(); got != 3 {
		t.Fatalf("%d store writes, want 3", got)
	}
	// Quiet: nothing to write, and the series is forgotten once its debounce is over.
	clk.Step(time.Minute)
	if n := r.Flush(ctx); n != 0 || r.Pending() != 0 {
		t.Fatalf("quiet flush wrote %d, %d series held", n, r.Pending())
	}
	if got := testutil.ToFloat64(r.metrics.recorded); got != 60 {
		t.Fatalf("recorded %v occurrences, want 60", got)
	}
}

// A different message (another exit code) is another series; the same one reported by a
// restarted agent adds to the stored count instead of starting over.
func TestSeriesAreKeyedAndSurviveRestart(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	clk := clocktesting.NewFakeClock(t0)
	r := newRecorder(t, mem, clk, nil)
	r.Eventf(web, v1.EventWarning, v1.EventExited, "node", "replica 0 exited with code 1")
	r.Eventf(web, v1.EventWarning, v1.EventExited, "node", "replica 0 exited with code 2")
	r.Eventf(Ref(v1.KindService, "api"), v1.EventWarning, v1.EventExited, "node", "replica 0 exited with code 1")
	if n := r.Flush(ctx); n != 3 {
		t.Fatalf("wrote %d, want 3 series", n)
	}
	clk.Step(time.Second)
	r2 := newRecorder(t, mem, clk, nil) // the agent restarted: nothing in memory
	r2.Eventf(web, v1.EventWarning, v1.EventExited, "node", "replica 0 exited with code 1")
	r2.Flush(ctx)
	evs := events(t, mem)
	if len(evs) != 3 {
		t.Fatalf("got %d events", len(evs))
	}
	counts := map[string]int32{}
	for _, e := range evs {
		counts[e.Spec.InvolvedObject.Name+" "+e.Spec.Message] = e.Spec.Count
		if !v1.IsDNSLabel(e.Metadata.Name) || !strings.HasPrefix(e.Metadata.Name, e.Spec.InvolvedObject.Name+"-") {
			t.Errorf("name %q", e.Metadata.Name)
		}
	}
	if counts["web replica 0 exited with code 1"] != 2 || counts["web replica 0 exited with code 2"] != 1 || counts["api replica 0 exited with code 1"] != 1 {
		t.Fatalf("counts %v", counts)
	}
}

// The token bucket bounds writes whatever the number of series: a burst, then QPS.
func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	st := &countingStore{Store: mem}
	clk := clocktesting.NewFakeClock(t0)
	r := newRecorder(t, st, clk, func(c *Config) { c.QPS, c.Burst = 2, 5 })
	for i := range 20 {
		r.Eventf(Ref(v1.KindService, "web"), v1.EventNormal, v1.EventScheduled, "scheduler", "replica %d placed on n1", i)
	}
	if n := r.Flush(ctx); n != 5 || st.n() != 5 {
		t.Fatalf("first flush wrote %d (%d store writes), want the burst of 5", n, st.n())
	}
	// Occurrences keep folding into the pending series while they wait.
	r.Eventf(Ref(v1.KindService, "web"), v1.EventNormal, v1.EventScheduled, "scheduler", "replica %d placed on n1", 19)
	for i := 1; i <= 8; i++ {
		clk.Step(time.Second)
		r.Flush(ctx)
		if want := min(5+2*i, 20); st.n() != want {
			t.Fatalf("after %ds: %d writes, want %d", i, st.n(), want)
		}
	}
	evs := events(t, mem)
	if len(evs) != 20 {
		t.Fatalf("got %d events", len(evs))
	}
	total := int32(0)
	for _, e := range evs {
		total += e.Spec.Count
	}
	if total != 21 {
		t.Fatalf("counts add up to %d, want 21", total)
	}
}

// A full recorder drops new series and counts them; a series whose debounce is over makes room.
func TestFullDropsWithAMetric(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	clk := clocktesting.NewFakeClock(t0)
	r := newRecorder(t, mem, clk, func(c *Config) { c.MaxSeries = 2; c.Debounce = 10 * time.Second })
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "a")
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "b")
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "c") // dropped
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "a") // folded: not new
	if got := testutil.ToFloat64(r.metrics.dropped.WithLabelValues("full")); got != 1 {
		t.Fatalf("dropped %v, want 1", got)
	}
	r.Flush(ctx)
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "d") // written ones still debounce: dropped
	if got := testutil.ToFloat64(r.metrics.dropped.WithLabelValues("full")); got != 2 {
		t.Fatalf("dropped %v, want 2", got)
	}
	clk.Step(10 * time.Second)
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "d") // evicts an idle series
	r.Flush(ctx)
	msgs := map[string]int32{}
	for _, e := range events(t, mem) {
		msgs[e.Spec.Message] = e.Spec.Count
	}
	if len(msgs) != 3 || msgs["a"] != 2 || msgs["b"] != 1 || msgs["d"] != 1 {
		t.Fatalf("events %v", msgs)
	}
}

// blockingStore never answers until released.
type blockingStore struct {
	Store
	release chan struct{}
}

func (b *blockingStore) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	select {
	case <-b.release:
		return b.Store.Get(ctx, kind, name, opts...)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Recording never waits for the store: with every store call stuck, thousands of occurrences
// return at once and stay within MaxSeries; the stuck flush gives up at its write timeout.
func TestNeverBlocks(t *testing.T) {
	mem := store.NewMemory()
	st := &blockingStore{Store: mem, release: make(chan struct{})}
	clk := clocktesting.NewFakeClock(t0)
	r := newRecorder(t, st, clk, func(c *Config) { c.MaxSeries = 64 })
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "first")
	ctx, cancel := context.WithCancel(context.Background())
	flushed := make(chan int)
	go func() { flushed <- r.Flush(ctx) }()
	for i := range 5000 {
		r.Eventf(Ref(v1.KindService, "web"), v1.EventWarning, v1.EventExited, "node", "replica %d exited", i%100)
	}
	if p := r.Pending(); p > 64 {
		t.Fatalf("%d series held, bound is 64", p)
	}
	if got := testutil.ToFloat64(r.metrics.dropped.WithLabelValues("full")); got == 0 {
		t.Fatal("nothing dropped past MaxSeries")
	}
	cancel()
	if n := <-flushed; n != 0 {
		t.Fatalf("stuck flush wrote %d", n)
	}
	close(st.release)
	if n := r.Flush(context.Background()); n == 0 {
		t.Fatal("nothing written once the store answers")
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "x")
	if r.Flush(context.Background()) != 0 || r.Pending() != 0 {
		t.Fatal("nil recorder did something")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Run(ctx)
}

// Run flushes on its ticker and once more when it stops.
func TestRunFlushesOnTickAndStop(t *testing.T) {
	mem := store.NewMemory()
	clk := clocktesting.NewFakeClock(t0)
	r := newRecorder(t, mem, clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "tick")
	deadline := time.Now().Add(10 * time.Second)
	for len(events(t, mem)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no flush on the ticker")
		}
		if clk.HasWaiters() {
			clk.Step(time.Second)
		}
		time.Sleep(time.Millisecond)
	}
	r.Eventf(web, v1.EventNormal, v1.EventStarted, "node", "stop")
	cancel()
	<-done
	if n := len(events(t, mem)); n != 2 {
		t.Fatalf("%d events after stop, want 2", n)
	}
}

func TestNameAndTruncate(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, spec := range []v1.EventSpec{
		{InvolvedObject: Ref("Service", long), Reason: v1.EventStarted},
		{InvolvedObject: Ref("Service", "a-"+strings.Repeat("b", 38)+"-c"), Reason: v1.EventStarted},
		{InvolvedObject: Ref("Lease", "lb"), Reason: v1.EventLeaseAcquired},
		{InvolvedObject: Ref("Service", "Not_A_Label"), Reason: v1.EventStarted},
	} {
		n := Name(spec)
		if !v1.IsDNSLabel(n) {
			t.Errorf("Name(%+v) = %q: not a DNS label", spec.InvolvedObject, n)
		}
		if Name(spec) != n {
			t.Errorf("Name not deterministic")
		}
		other := spec
		other.Message = "x"
		if Name(other) == n {
			t.Errorf("message not in the key")
		}
	}
	msg := strings.Repeat("é", 1000) // 2000 bytes
	got := truncate(msg, v1.MaxEventMessage)
	if len(got) > v1.MaxEventMessage || !strings.HasSuffix(got, "...") || !utf8Valid(got) {
		t.Fatalf("truncate: %d bytes", len(got))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

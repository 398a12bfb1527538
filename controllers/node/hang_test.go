package node

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/controllers/ctrl"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"
)

// assignedService stores a one-replica Service name running image, assigned to n1.
func assignedService(t *testing.T, st store.Store, name, image string) {
	t.Helper()
	ctx := context.Background()
	n := int32(1)
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ServiceSpec{Image: image, Replicas: &n}}
	svc.Default()
	o, err := st.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	svc = o.(*v1.Service)
	svc.Status.Assignments = []v1.Assignment{{Index: 0, Node: "n1", SpecHash: spechash.Of(&svc.Spec)}}
	if _, err := st.UpdateStatus(ctx, svc); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 10s (a bound on a hang, not a performance figure).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func created(dock Docker, service string) bool {
	cs, _ := dock.List(context.Background(), map[string]string{docker.LabelService: service})
	return len(cs) > 0 && cs[0].Running
}

// pullHangDocker: the image "slow:1" is missing and its pull never returns until ctx ends
// (a registry that black-holes).
type pullHangDocker struct {
	*fakeDocker
	mu    sync.Mutex
	pulls int
}

func (h *pullHangDocker) HasImage(ctx context.Context, ref string) (bool, error) {
	return ref != "slow:1", nil
}

func (h *pullHangDocker) PullImage(ctx context.Context, ref string, progress func(docker.PullProgress)) error {
	h.mu.Lock()
	h.pulls++
	h.mu.Unlock()
	progress(docker.PullProgress{Layers: 3, LayersDone: 1, BytesDone: 2e6, BytesTotal: 8e6})
	<-ctx.Done()
	return ctx.Err()
}

// TestHungPullDoesNotStallTheNode is the review's repro (B1): two Services wait for a pull
// that never ends, a third must still be created. Before, the pull ran inside Reconcile and
// the two hung pulls held both workers. Also: both waiters share one pull, and they are
// reported ImagePulling with the pull's progress.
func TestHungPullDoesNotStallTheNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.NewMemory()
	assignedService(t, st, "a-slow", "slow:1")
	assignedService(t, st, "b-slow", "slow:1")
	assignedService(t, st, "c-fast", "echo:1")
	dock := &pullHangDocker{fakeDocker: newFakeDocker(time.Now)}
	var mu sync.Mutex
	var published []observed.Replica
	rec, err := New(Config{Node: "n1", Store: st, Docker: dock, MinReady: time.Millisecond,
		Publish: func(rs []observed.Replica) { mu.Lock(); published = rs; mu.Unlock() },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec.pullRefresh = 20 * time.Millisecond
	go rec.Run(ctx)
	waitFor(t, "c-fast created while two pulls hang", func() bool { return created(dock, "c-fast") })
	waitFor(t, "a-slow and b-slow reported ImagePulling", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range published {
			if r.Service != "c-fast" && r.Reason == v1.ReasonImagePulling && r.State == v1.ReplicaPending &&
				strings.Contains(r.Message, "pulling image slow:1") && strings.Contains(r.Message, "1/3 layers, 2.0/8.0 MB") {
				n++
			}
		}
		return n == 2
	})
	dock.mu.Lock()
	pulls := dock.pulls
	dock.mu.Unlock()
	if pulls != 1 {
		t.Fatalf("%d pulls of slow:1, want one shared by both services", pulls)
	}
}

// blockingDocker: every call about a service named "stuck-*" blocks until its ctx ends (a
// daemon that accepts the request and never answers); other services are served normally.
type blockingDocker struct{ *fakeDocker }

func stuck(labels map[string]string) bool {
	return strings.HasPrefix(labels[docker.LabelService], "stuck-")
}

func (b blockingDocker) List(ctx context.Context, labels map[string]string) ([]docker.Container, error) {
	if stuck(labels) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return b.fakeDocker.List(ctx, labels)
}

func (b blockingDocker) Create(ctx context.Context, cfg docker.CreateConfig) (string, error) {
	if stuck(cfg.Config.Labels) {
		<-ctx.Done()
		return "", ctx.Err()
	}
	return b.fakeDocker.Create(ctx, cfg)
}

// TestBlockingEngineOtherServicesConverge: the engine hangs on every call about two Services
// (as many as there are workers); the per-reconcile deadline frees the workers and the third
// Service converges. Before, both workers stayed in the hung calls for good.
func TestBlockingEngineOtherServicesConverge(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.NewMemory()
	assignedService(t, st, "stuck-a", "echo:1")
	assignedService(t, st, "stuck-b", "echo:1")
	assignedService(t, st, "z-fast", "echo:1")
	dock := blockingDocker{newFakeDocker(time.Now)}
	logs := &lockedBuffer{}
	rec, err := New(Config{Node: "n1", Store: st, Docker: dock, MinReady: time.Millisecond, Workers: 2,
		ReconcileTimeout: 200 * time.Millisecond, SlowReconcile: 100 * time.Millisecond,
		Publish: func([]observed.Replica) {}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go rec.Run(ctx)
	waitFor(t, "z-fast created while the engine hangs on the others", func() bool { return created(dock, "z-fast") })
	waitFor(t, "the hung passes logged as slow", func() bool {
		s := logs.String()
		return strings.Contains(s, `msg="slow reconcile" controller=node node=n1 service=stuck-`) && strings.Contains(s, "reconcile deadline exceeded")
	})
}

// lockedBuffer is a log sink shared by the reconciler's goroutines and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gatedPullDocker: "big:1" is missing; its pull waits for release (or ctx), then succeeds.
type gatedPullDocker struct {
	*fakeDocker
	release chan struct{}
	mu      sync.Mutex
	pulls   int
}

func (g *gatedPullDocker) PullImage(ctx context.Context, ref string, progress func(docker.PullProgress)) error {
	g.mu.Lock()
	g.pulls++
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.fakeDocker.PullImage(ctx, ref, progress)
}

// TestPullWakesEveryWaiter: two Services wait for one pull; when it ends both are created
// without any other trigger (no resync, no store event).
func TestPullWakesEveryWaiter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.NewMemory()
	assignedService(t, st, "a", "big:1")
	assignedService(t, st, "b", "big:1")
	dock := &gatedPullDocker{fakeDocker: newFakeDocker(time.Now), release: make(chan struct{})}
	dock.missing["big:1"] = true
	rec, err := New(Config{Node: "n1", Store: st, Docker: dock, MinReady: time.Millisecond, Resync: time.Hour,
		Publish: func([]observed.Replica) {}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go rec.Run(ctx)
	waitFor(t, "one pull waited for by both", func() bool {
		rec.puller.mu.Lock()
		defer rec.puller.mu.Unlock()
		j := rec.puller.active["big:1"]
		return j != nil && len(j.waiters) == 2
	})
	close(dock.release)
	waitFor(t, "both created after the pull", func() bool { return created(dock, "a") && created(dock, "b") })
	dock.mu.Lock()
	defer dock.mu.Unlock()
	if dock.pulls != 1 {
		t.Fatalf("%d pulls, want 1", dock.pulls)
	}
}

// TestPullTimeoutIsAReplicaFailure: a pull that runs out of PullTimeout fails the replica
// (CreateFailed, with the reason in its message, retried after the backoff); it is not taken
// for an engine outage.
func TestPullTimeoutIsAReplicaFailure(t *testing.T) {
	f := newFixture(t)
	dock := &gatedPullDocker{fakeDocker: f.dock, release: make(chan struct{})}
	dock.missing["big:1"] = true
	rec, err := New(Config{Node: "n1", Store: f.st, Docker: dock, Clock: f.clk, PullTimeout: 50 * time.Millisecond,
		Publish: func(rs []observed.Replica) { f.published = rs }, DrainDelay: -1, MinReady: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.rec = rec
	f.service(1, "big:1")
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if r := f.published[0]; r.Reason != v1.ReasonImagePulling || r.State != v1.ReplicaPending {
		t.Fatalf("while pulling: %+v", r)
	}
	waitFor(t, "the pull to time out", func() bool { return len(rec.puller.pulling()) == 0 })
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if r := f.published[0]; r.Reason != "CreateFailed" || r.State != v1.ReplicaFailed || !strings.Contains(r.Message, "image pull timed out") {
		t.Fatalf("after the pull timed out: %+v", r)
	}
}

// nodeListHangDocker: the node-wide container list (no service label: the resync's) blocks
// until its context ends.
type nodeListHangDocker struct{ *fakeDocker }

func (n nodeListHangDocker) List(ctx context.Context, labels map[string]string) ([]docker.Container, error) {
	if labels[docker.LabelService] == "" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return n.fakeDocker.List(ctx, labels)
}

// TestResyncIsBounded: the resync (also run after the event stream reconnects) lists the node's
// containers outside the workers; an engine that never answers it must not stop the resync,
// and the Services of the store are still enqueued. Before, enqueueAll blocked for good.
func TestResyncIsBounded(t *testing.T) {
	st := store.NewMemory()
	assignedService(t, st, "a", "echo:1")
	assignedService(t, st, "b", "echo:1")
	rec, err := New(Config{Node: "n1", Store: st, Docker: nodeListHangDocker{newFakeDocker(time.Now)}, CallTimeout: 50 * time.Millisecond,
		Publish: func([]observed.Replica) {}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	loop := ctrl.New[string]("node-test", rec, ctrl.Options{})
	done := make(chan struct{})
	go func() { rec.enqueueAll(context.Background(), loop); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the resync still blocked after 10s on a container list that never answers")
	}
	if n := loop.Len(); n != 2 {
		t.Fatalf("%d services enqueued by the resync, want 2", n)
	}
}

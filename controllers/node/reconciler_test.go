package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/docker"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/spechash"
	"github.com/constellation-sh/constellation/pkg/store"

	clocktesting "k8s.io/utils/clock/testing"
)

// fakeDocker is an in-memory engine: containers with labels and states, and a switch that
// makes every call fail as if the daemon were gone.
type fakeDocker struct {
	mu     sync.Mutex
	down   bool
	next   int
	ctrs   map[string]*docker.Container
	now    func() time.Time
	events chan docker.Event
	// missing images are absent until pulled; every other image is present.
	missing map[string]bool
	pulls   int
	// hostPort, when set, chooses the published host port of a new container.
	hostPort func() string
	// env of each container as created, by ID; logTail, when set, makes a container's last log
	// lines from it (a container printing its environment). Default "last line".
	env     map[string][]string
	logTail func(env []string) string
	// exitsWith, when set, is an environment entry ("K=V") whose containers exit with code 1
	// as soon as they start (an application refusing its configuration).
	exitsWith string
	// created are the create configs, in order.
	created []docker.CreateConfig
	// stops are the timeouts of the Stop calls, in order.
	stops []time.Duration
}

var _ Docker = (*fakeDocker)(nil)

func newFakeDocker(now func() time.Time) *fakeDocker {
	return &fakeDocker{ctrs: map[string]*docker.Container{}, now: now, events: make(chan docker.Event), missing: map[string]bool{}}
}

func (f *fakeDocker) err() error {
	if f.down {
		return fmt.Errorf("fake: %w", docker.ErrUnavailable)
	}
	return nil
}

func (f *fakeDocker) List(_ context.Context, labels map[string]string) ([]docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err(); err != nil {
		return nil, err
	}
	var out []docker.Container
outer:
	for _, c := range f.ctrs {
		for k, v := range labels {
			if c.Labels[k] != v {
				continue outer
			}
		}
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeDocker) Create(_ context.Context, cfg docker.CreateConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err(); err != nil {
		return "", err
	}
	f.next++
	id := fmt.Sprintf("c%d", f.next)
	port := fmt.Sprint(40000 + f.next)
	if f.hostPort != nil {
		port = f.hostPort()
	}
	if f.env == nil {
		f.env = map[string][]string{}
	}
	f.env[id] = append([]string(nil), cfg.Config.Env...)
	f.created = append(f.created, cfg)
	f.ctrs[id] = &docker.Container{ID: id, Name: cfg.Name, Image: cfg.Config.Image, Labels: cfg.Config.Labels, State: "created",
		Ports: map[string]docker.HostPort{"8080/tcp": {IP: "0.0.0.0", Port: port}}}
	if cfg.HostConfig.NetworkMode == "host" {
		// As Docker shows it: on the "host" network, no address, nothing published.
		f.ctrs[id].Ports, f.ctrs[id].Networks = nil, map[string]string{"host": ""}
	}
	return id, nil
}

func (f *fakeDocker) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err(); err != nil {
		return err
	}
	c, ok := f.ctrs[id]
	if !ok {
		return docker.ErrNotFound
	}
	c.Running, c.State, c.StartedAt = true, "running", f.now()
	if f.exitsWith != "" && slices.Contains(f.env[id], f.exitsWith) {
		c.Running, c.State, c.ExitCode, c.FinishedAt = false, "exited", 1, f.now()
	}
	return nil
}

func (f *fakeDocker) Stop(_ context.Context, id string, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err(); err != nil {
		return err
	}
	f.stops = append(f.stops, timeout)
	if c, ok := f.ctrs[id]; ok {
		c.Running, c.State, c.FinishedAt = false, "exited", f.now()
	}
	return nil
}

func (f *fakeDocker) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err(); err != nil {
		return err
	}
	delete(f.ctrs, id)
	return nil
}

func (f *fakeDocker) HasImage(_ context.Context, ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.missing[ref], f.err()
}

func (f *fakeDocker) PullImage(_ context.Context, ref string, progress func(docker.PullProgress)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err(); err != nil {
		return err
	}
	f.pulls++
	delete(f.missing, ref)
	return nil
}

func (f *fakeDocker) EnsureNetwork(context.Context, string) error { return f.lockedErr() }
func (f *fakeDocker) EnsureVolume(context.Context, string) error  { return f.lockedErr() }
func (f *fakeDocker) LogTail(_ context.Context, id string, _ time.Time, _ int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logTail != nil {
		return f.logTail(f.env[id]), f.err()
	}
	return "last line", f.err()
}

// Events fails at once while the daemon is down, and ends (io.EOF) when it goes down.
func (f *fakeDocker) Events(ctx context.Context, _ map[string]string) (<-chan docker.Event, <-chan error) {
	errc := make(chan error, 1)
	out := make(chan docker.Event)
	go func() {
		defer close(out)
		for {
			if err := f.lockedErr(); err != nil {
				errc <- err
				return
			}
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return out, errc
}

func (f *fakeDocker) lockedErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err()
}

func (f *fakeDocker) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// crash makes a container exit with code.
func (f *fakeDocker) crash(id string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.ctrs[id]
	c.Running, c.State, c.ExitCode, c.FinishedAt = false, "exited", code, f.now()
}

// flakyStore fails every read while down.
type flakyStore struct {
	store.Store
	mu   sync.Mutex
	down bool
}

func (s *flakyStore) Get(ctx context.Context, kind, name string, opts ...store.ReadOption) (v1.Object, error) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		return nil, store.ErrUnavailable
	}
	return s.Store.Get(ctx, kind, name, opts...)
}

type fixture struct {
	t         *testing.T
	ctx       context.Context
	clk       *clocktesting.FakeClock
	dock      *fakeDocker
	st        *flakyStore
	rec       *Reconciler
	published []observed.Replica
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with changes to the reconciler's Config.
func newFixtureWith(t *testing.T, change func(*Config)) *fixture {
	f := &fixture{t: t, ctx: context.Background(), clk: clocktesting.NewFakeClock(time.Unix(1000, 0))}
	f.dock = newFakeDocker(f.clock)
	f.st = &flakyStore{Store: store.NewMemory()}
	f.restart(change)
	return f
}

// clock is the fixture's time: f.clk, which a test's change to the Config may replace.
func (f *fixture) clock() time.Time { return f.clk.Now() }

// stepUntil waits for cond, stepping the fixture's clock by d whenever a timer waits on it (a
// probe's next run), instead of sleeping through the probes' intervals.
func (f *fixture) stepUntil(what string, d time.Duration, cond func() bool) {
	f.t.Helper()
	waitFor(f.t, what, func() bool {
		if cond() {
			return true
		}
		if f.clk.HasWaiters() {
			f.clk.Step(d)
		}
		return false
	})
}

// restart replaces the reconciler with a new one on the same engine and store, as an agent
// restart does: everything it kept in memory is gone.
func (f *fixture) restart(change func(*Config)) {
	cfg := Config{Node: "n1", Advertise: "10.0.0.1", Store: f.st, Docker: f.dock, Clock: f.clk,
		Publish: func(rs []observed.Replica) { f.published = rs }, DrainDelay: -1, MinReady: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if change != nil {
		change(&cfg)
	}
	if clk, ok := cfg.Clock.(*clocktesting.FakeClock); ok {
		f.clk = clk // the test's own clock: the fake engine follows it too
	}
	rec, err := New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.rec = rec
}

// service stores web with n replicas all assigned to n1.
func (f *fixture) service(n int32, image string) { f.serviceWith(n, image, nil) }

// serviceWith is service with changes to the spec.
func (f *fixture) serviceWith(n int32, image string, change func(*v1.ServiceSpec)) {
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{Image: image, Replicas: &n, Ports: []v1.ServicePort{{ContainerPort: 8080}}}}
	if change != nil {
		change(&svc.Spec)
	}
	svc.Default()
	o, err := f.st.Create(f.ctx, svc)
	if err != nil {
		f.t.Fatal(err)
	}
	svc = o.(*v1.Service)
	for i := range n {
		svc.Status.Assignments = append(svc.Status.Assignments, v1.Assignment{Index: i, Node: "n1", SpecHash: spechash.Of(&svc.Spec)})
	}
	if _, err := f.st.UpdateStatus(f.ctx, svc); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) reconcile() error {
	_, err := f.rec.Reconcile(f.ctx, "web")
	return err
}

func (f *fixture) running() int {
	cs, _ := f.dock.List(f.ctx, nil)
	n := 0
	for _, c := range cs {
		if c.Running {
			n++
		}
	}
	return n
}

func TestReconcilerConvergesAndSurvivesOutages(t *testing.T) {
	f := newFixture(t)
	f.service(2, "echo:1")
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 2 || len(f.published) != 2 || !strings.HasPrefix(f.published[0].Ports["8080/tcp"], "10.0.0.1:4000") {
		t.Fatalf("running %d, published %+v", f.running(), f.published)
	}
	// A container without our labels is never touched.
	f.dock.ctrs["foreign"] = &docker.Container{ID: "foreign", Running: true, State: "running", Labels: map[string]string{"app": "x"}}

	// The store is unreachable: nothing is torn down, the last published state stays.
	f.st.mu.Lock()
	f.st.down = true
	f.st.mu.Unlock()
	before := f.published
	if err := f.reconcile(); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	if f.running() != 3 || len(f.published) != len(before) {
		t.Fatalf("store outage changed containers: running %d", f.running())
	}
	f.st.mu.Lock()
	f.st.down = false
	f.st.mu.Unlock()

	// Docker goes away: the pass fails (and is retried by the loop), nothing else happens.
	f.dock.setDown(true)
	if err := f.reconcile(); !errors.Is(err, docker.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	f.dock.setDown(false)

	// A crash while Docker was away is healed when it is back, after the backoff.
	cs, _ := f.dock.List(f.ctx, map[string]string{docker.LabelReplica: "0"})
	f.dock.crash(cs[0].ID, 2)
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.published[0].State != v1.ReplicaExited || f.published[0].ExitCode != 2 || f.published[0].Message != "exit code 2: last line" {
		t.Fatalf("published %+v", f.published[0])
	}
	f.clk.Step(2 * time.Second)
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if f.running() != 3 {
		t.Fatalf("crashed replica not started again: %d running", f.running())
	}

	// Three exits in a row: CrashLoop, and the backoff grows.
	for i := 0; i < 2; i++ {
		f.clk.Step(time.Second)
		f.dock.crash(cs[0].ID, 2)
		res, _ := f.rec.Reconcile(f.ctx, "web")
		if res.RequeueAfter == 0 {
			t.Fatal("no requeue while backing off")
		}
		f.clk.Step(res.RequeueAfter)
		if err := f.reconcile(); err != nil {
			t.Fatal(err)
		}
	}
	f.dock.crash(cs[0].ID, 2)
	f.clk.Step(time.Millisecond)
	_ = f.reconcile()
	if r := f.published[0]; r.Reason != v1.ReasonCrashLoop || r.State != v1.ReplicaFailed || r.Restarts < 3 {
		t.Fatalf("published %+v", r)
	}

	// The service is deleted: its containers go, the foreign one stays.
	if _, err := f.st.Delete(f.ctx, v1.KindService, "web", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.reconcile(); err != nil {
		t.Fatal(err)
	}
	if cs, _ := f.dock.List(f.ctx, nil); len(cs) != 1 || cs[0].ID != "foreign" {
		t.Fatalf("left %+v", cs)
	}
	if len(f.published) != 0 {
		t.Fatalf("published %+v", f.published)
	}
}

// TestDaemonOutageReconnects runs the reconciler: Docker goes away, a container dies meanwhile
// (its replicas are Unknown, not Ready, while nobody can tell), Docker comes back: the event
// stream reconnects and the node converges, long before the resync.
func TestDaemonOutageReconnects(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dock := newFakeDocker(time.Now)
	st := store.NewMemory()
	n := int32(2)
	svc := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{Image: "echo:1", Replicas: &n}}
	svc.Default()
	o, err := st.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	svc = o.(*v1.Service)
	svc.Status.Assignments = []v1.Assignment{{Index: 0, Node: "n1", SpecHash: spechash.Of(&svc.Spec)}, {Index: 1, Node: "n1", SpecHash: spechash.Of(&svc.Spec)}}
	if _, err := st.UpdateStatus(ctx, svc); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var published []observed.Replica
	rec, err := New(Config{Node: "n1", Store: st, Docker: dock, Resync: time.Hour, BackoffBase: 10 * time.Millisecond, MinReady: time.Millisecond,
		Publish: func(rs []observed.Replica) { mu.Lock(); published = rs; mu.Unlock() },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go rec.Run(ctx)
	running := func() int {
		cs, _ := dock.List(ctx, nil)
		k := 0
		for _, c := range cs {
			if c.Running {
				k++
			}
		}
		return k
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	wait("2 running", func() bool { return running() == 2 })
	// While the daemon is away its replicas stay published as last seen (not dropped, not
	// torn down) but not ready: this service has no health check and no TCP port the agent
	// could connect to, so nothing vouches for them (a container may have died with the engine,
	// as one does here). Before, the last "ready" state stayed published for the whole outage.
	unknown := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(published) != 2 {
			return false
		}
		for _, r := range published {
			if r.Ready() || r.Health != v1.HealthUnknown {
				return false
			}
		}
		return true
	}
	dock.setDown(true)
	wait("the outage seen: replicas published as Unknown", unknown)
	cs, _ := func() ([]docker.Container, error) {
		dock.setDown(false)
		defer dock.setDown(true)
		return dock.List(ctx, nil)
	}()
	dock.crash(cs[0].ID, 1)
	wait("replicas published as Unknown during the outage", unknown)
	dock.setDown(false)
	wait("converged after the daemon came back", func() bool { return running() == 2 })
}

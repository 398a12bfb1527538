package traefik

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// flakyStore is a real memory store whose reads can be switched to fail, as a store that lost
// its local replica would.
type flakyStore struct {
	*store.Memory
	mu   sync.Mutex
	fail error
}

func (f *flakyStore) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

func (f *flakyStore) List(ctx context.Context, kind string, sel v1.Selector, opts ...store.ReadOption) ([]v1.Object, int64, error) {
	f.mu.Lock()
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	return f.Memory.List(ctx, kind, sel, opts...)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type providerFixture struct {
	st   *flakyStore
	view *observed.Set
	p    *Provider
	reg  *prometheus.Registry
	now  time.Time
}

func newProviderFixture(t *testing.T) *providerFixture {
	t.Helper()
	f := &providerFixture{st: &flakyStore{Memory: store.NewMemory()}, view: observed.NewSet(), reg: prometheus.NewRegistry(),
		now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	f.view.SetNode(observed.Node{Name: "n1", Advertise: "10.0.0.1", Alive: true, State: "alive"})
	p, err := NewProvider(ProviderConfig{Store: f.st, View: f.view, Registerer: f.reg, Logger: quietLogger(),
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f
}

func (f *providerFixture) create(t *testing.T, o v1.Object) {
	t.Helper()
	o.Default()
	if _, err := f.st.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func do(h http.Handler, method, ifNoneMatch string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, ProviderPath, nil)
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestProviderServesNothingBeforeFirstRender(t *testing.T) {
	f := newProviderFixture(t)
	if rec := do(f.p, http.MethodGet, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("before any render: %d %s, want 503", rec.Code, rec.Body)
	}
	if err := f.p.Ready(); !errors.Is(err, ErrNotRendered) {
		t.Fatalf("Ready() = %v, want ErrNotRendered", err)
	}
	// A store that fails from the start: still 503, never an empty configuration.
	f.st.setFail(store.ErrUnavailable)
	if err := f.p.Sync(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Sync = %v", err)
	}
	if rec := do(f.p, http.MethodGet, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("after a failed first render: %d %s, want 503", rec.Code, rec.Body)
	}
	if err := f.p.Ready(); !errors.Is(err, ErrNotRendered) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ready() = %v, want ErrNotRendered wrapping the store error", err)
	}
	// Observed state changing does not help: there are no routes to render yet.
	f.view.SetNodeReplicas("n1", []observed.Replica{running("web", 0, map[string]string{"80/tcp": "10.0.0.1:30000"})})
	if err := f.p.refresh(context.Background(), false); err == nil {
		t.Fatal("refresh without any store read succeeded")
	}
	if rec := do(f.p, http.MethodGet, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("after a view change without a store read: %d, want 503", rec.Code)
	}
}

func TestProviderETagAnd304(t *testing.T) {
	f := newProviderFixture(t)
	f.create(t, svc("web", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.test"}}}))
	if err := f.p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := do(f.p, http.MethodGet, "")
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || etag == "" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d etag %q type %q", rec.Code, etag, rec.Header().Get("Content-Type"))
	}
	var cfg Config
	if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil || cfg.HTTP.Routers["web-http-0"] == nil {
		t.Fatalf("body does not hold the web router: %v\n%s", err, rec.Body)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		if rec := do(f.p, http.MethodGet, inm); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: %d, want 304 with no body", inm, rec.Code)
		}
	}
	if rec := do(f.p, http.MethodGet, `"stale"`); rec.Code != 200 {
		t.Errorf("stale If-None-Match: %d, want 200", rec.Code)
	}
	if rec := do(f.p, http.MethodHead, ""); rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("ETag") != etag {
		t.Errorf("HEAD: %d, body %d bytes", rec.Code, rec.Body.Len())
	}
	if rec := do(f.p, http.MethodPost, ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}

	// Nothing changed: same bytes, same tag (Traefik hashes the body and must not reload).
	if err := f.p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again := do(f.p, http.MethodGet, ""); again.Header().Get("ETag") != etag || again.Body.String() != rec.Body.String() {
		t.Fatal("an unchanged state produced a new ETag or body")
	}
	// A replica appears: new tag.
	f.view.SetNodeReplicas("n1", []observed.Replica{running("web", 0, map[string]string{"80/tcp": "10.0.0.1:30000"})})
	if err := f.p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if now := do(f.p, http.MethodGet, etag); now.Code != 200 || now.Header().Get("ETag") == etag || !strings.Contains(now.Body.String(), "10.0.0.1:30000") {
		t.Fatalf("after a change: %d etag %q\n%s", now.Code, now.Header().Get("ETag"), now.Body)
	}
	if got := metricValue(t, f.p.metrics.renders.WithLabelValues("unchanged")); got != 1 {
		t.Errorf("renders_total{result=unchanged} = %v, want 1", got)
	}
	if got := metricValue(t, f.p.metrics.renders.WithLabelValues("changed")); got != 2 {
		t.Errorf("renders_total{result=changed} = %v, want 2", got)
	}
}

func TestProviderKeepsLastGoodConfigOnStoreError(t *testing.T) {
	f := newProviderFixture(t)
	f.create(t, svc("web", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.test"}}}))
	f.view.SetNodeReplicas("n1", []observed.Replica{running("web", 0, map[string]string{"80/tcp": "10.0.0.1:30000"})})
	ctx := context.Background()
	if err := f.p.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	good := do(f.p, http.MethodGet, "")
	if err := f.p.Ready(); err != nil {
		t.Fatalf("Ready() = %v", err)
	}

	f.st.setFail(store.ErrUnavailable)
	f.now = f.now.Add(time.Minute)
	// The store cannot be read, and then the replica dies: the routes of the last good read stay,
	// the dead endpoint leaves (DESIGN: losing the store stops changes, never traffic).
	if err := f.p.Sync(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Sync = %v, want the store error", err)
	}
	if rec := do(f.p, http.MethodGet, ""); rec.Code != 200 || rec.Body.String() != good.Body.String() {
		t.Fatalf("store failure alone changed what is served: %d\n%s", rec.Code, rec.Body)
	}
	f.view.SetNodeReplicas("n1", nil)
	for i := 0; i < 2; i++ {
		if err := f.p.Sync(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Sync = %v, want the store error", err)
		}
	}
	rec := do(f.p, http.MethodGet, "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"web-http-0":{`) || !strings.Contains(rec.Body.String(), `"servers":[]`) {
		t.Fatalf("during a store failure: %d, want the web router kept with no server:\n%s", rec.Code, rec.Body)
	}
	err := f.p.Ready()
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "store read at 2026-11-26T12:00:00Z") {
		t.Fatalf("Ready() = %v, want the store error and when the store was last read", err)
	}
	if got := metricValue(t, f.p.metrics.storeErrors); got != 3 {
		t.Errorf("store_errors_total = %v, want 3", got)
	}
	if got := metricValue(t, f.p.metrics.healthy); got != 0 {
		t.Errorf("config_current = %v, want 0", got)
	}

	f.create(t, svc("late", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "late.test"}}}))
	f.st.setFail(nil)
	// A view-only refresh (what Run does on View.Changed) reads the store again after a failure.
	if err := f.p.refresh(ctx, false); err != nil {
		t.Fatal(err)
	}
	if body, _ := f.p.Config(); !strings.Contains(string(body), "late-http-0") {
		t.Fatalf("the refresh after the store came back did not re-read it:\n%s", body)
	}
	if err := f.p.Ready(); err != nil {
		t.Fatalf("Ready() after recovery = %v", err)
	}
	if got := metricValue(t, f.p.metrics.healthy); got != 1 {
		t.Errorf("config_current = %v, want 1", got)
	}
}

// TestProviderRunFollowsChanges drives Run through the store watch and View.Changed.
func TestProviderRunFollowsChanges(t *testing.T) {
	f := newProviderFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	}()
	waitBody := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if body, _ := f.p.Config(); body != nil && ok(string(body)) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		body, _ := f.p.Config()
		t.Fatalf("%s: not seen within 5s; serving:\n%s", what, body)
	}
	waitBody("an honest empty configuration", func(b string) bool { return b == "{}\n" })
	f.create(t, svc("web", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.test"}}}))
	waitBody("the new Service's router (store watch)", func(b string) bool { return strings.Contains(b, "web-http-0") })
	f.view.SetNodeReplicas("n1", []observed.Replica{running("web", 0, map[string]string{"80/tcp": "10.0.0.1:30000"})})
	waitBody("the new replica (View.Changed)", func(b string) bool { return strings.Contains(b, "10.0.0.1:30000") })
	f.view.SetNode(observed.Node{Name: "n1", Advertise: "10.0.0.1", Alive: false, State: "dead"})
	waitBody("the dead node's replica gone", func(b string) bool {
		return !strings.Contains(b, "10.0.0.1:30000") && strings.Contains(b, "web-http-0")
	})

	rec := httptest.NewRecorder()
	f.p.RoutesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, RoutesPath, nil))
	var rl RouteList
	if err := json.Unmarshal(rec.Body.Bytes(), &rl); err != nil || len(rl.Items) != 1 || rl.Items[0].Host != "web.test" || rl.Items[0].Service != "web" || len(rl.Items[0].Endpoints) != 0 {
		t.Fatalf("routes: %v %s", err, rec.Body)
	}
}

// TestProviderWatchFailureRecovers closes the store's watches (as a compaction or a restart
// would): the provider re-opens one and keeps following changes.
func TestProviderWatchFailureRecovers(t *testing.T) {
	f := newProviderFixture(t)
	f.p.cfg.RetryBackoff = 10 * time.Millisecond
	f.p.cfg.Resync = time.Hour // only the watch can bring the change in
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &closingWatcher{flakyStore: f.st, first: make(chan struct{}), reopened: make(chan struct{})}
	f.p.cfg.Store = w
	go func() { _ = f.p.Run(ctx) }()
	<-w.first
	<-w.reopened // the change below comes after the failed watch, on the re-opened one
	f.create(t, svc("late", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "late.test"}}}))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if body, _ := f.p.Config(); strings.Contains(string(body), "late-http-0") {
			if got := metricValue(t, f.p.metrics.watchRestarts); got < 1 {
				t.Errorf("store_watch_restarts_total = %v, want >= 1", got)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("change after a failed watch never rendered")
}

// closingWatcher's first watch fails at once with an Error event.
type closingWatcher struct {
	*flakyStore
	once, reopen sync.Once
	first        chan struct{} // closed when the first watch has failed
	reopened     chan struct{} // closed when the next watch is open
}

func (c *closingWatcher) Watch(ctx context.Context, kind string, rev int64) (<-chan store.Event, error) {
	failed := false
	c.once.Do(func() { failed = true })
	if failed {
		ch := make(chan store.Event, 1)
		ch <- store.Event{Type: store.Error, Err: store.ErrTooOld}
		close(ch)
		close(c.first)
		return ch, nil
	}
	ch, err := c.flakyStore.Watch(ctx, kind, rev)
	if err == nil {
		c.reopen.Do(func() { close(c.reopened) })
	}
	return ch, err
}

func TestNewProviderValidates(t *testing.T) {
	if _, err := NewProvider(ProviderConfig{View: observed.NewSet()}); err == nil {
		t.Error("no Store: want an error")
	}
	if _, err := NewProvider(ProviderConfig{Store: store.NewMemory()}); err == nil {
		t.Error("no View: want an error")
	}
	reg := prometheus.NewRegistry()
	cfg := ProviderConfig{Store: store.NewMemory(), View: observed.NewSet(), Registerer: reg}
	if _, err := NewProvider(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewProvider(cfg); err == nil {
		t.Error("registering the metrics twice on one registry: want an error")
	}
}

// metricValue reads one counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither a counter nor a gauge", m.Desc())
	return 0
}

// panickyView panics in Replicas when armed, standing in for a bug in rendering.
type panickyView struct {
	*observed.Set
	mu    sync.Mutex
	armed bool
}

func (v *panickyView) Replicas() []observed.Replica {
	v.mu.Lock()
	armed := v.armed
	v.mu.Unlock()
	if armed {
		panic("boom")
	}
	return v.Set.Replicas()
}

func TestProviderKeepsLastGoodConfigOnRenderPanic(t *testing.T) {
	f := newProviderFixture(t)
	view := &panickyView{Set: f.view}
	f.p.cfg.View = view
	f.create(t, svc("web", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.test"}}}))
	if err := f.p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	good, etag := f.p.Config()
	view.mu.Lock()
	view.armed = true
	view.mu.Unlock()
	err := f.p.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("Sync = %v, want the recovered panic", err)
	}
	if body, tag := f.p.Config(); string(body) != string(good) || tag != etag {
		t.Fatal("a failed render replaced the configuration")
	}
	if err := f.p.Ready(); err == nil {
		t.Fatal("Ready() = nil after a failed render")
	}
	if got := metricValue(t, f.p.metrics.renders.WithLabelValues("error")); got != 1 {
		t.Errorf("renders_total{result=error} = %v, want 1", got)
	}
}

package traefik

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// newWarmingProvider is an LB agent's provider just after a restart: the store already holds a
// routed Service, but observed state is empty (gossip has not exchanged state yet, the local
// node has not published).
func newWarmingProvider(t *testing.T, synced <-chan struct{}, warmUp time.Duration) (*Provider, *observed.Set) {
	t.Helper()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	s := svc("web", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.test"}}})
	s.Default()
	if _, err := st.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "n1", Advertise: "10.0.0.1", Alive: true, State: "alive"})
	p, err := NewProvider(ProviderConfig{Store: st, View: view, Logger: quietLogger(), Registerer: prometheus.NewRegistry(),
		Synced: synced, WarmUp: warmUp, Debounce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p, view
}

func runProvider(t *testing.T, p *Provider) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	})
}

func waitConfig(t *testing.T, p *Provider, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if body, _ := p.Config(); body != nil && ok(string(body)) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	body, _ := p.Config()
	t.Fatalf("%s: not seen within 10s; serving:\n%s", what, body)
}

// TestProviderServesNoEmptyServersBeforeSync is B7: before observed state has synced, the
// provider renders nothing (503, so Traefik keeps its previous configuration), however often
// it is asked to refresh; once synced, the first configuration it ever serves has the servers.
func TestProviderServesNoEmptyServersBeforeSync(t *testing.T) {
	synced := make(chan struct{})
	p, view := newWarmingProvider(t, synced, time.Hour)
	runProvider(t, p)

	// Refreshes (a store read, a view change) do not render while warming up.
	if err := p.Sync(context.Background()); err != nil {
		t.Fatalf("Sync while warming up: %v", err)
	}
	view.SetNode(observed.Node{Name: "n2", Advertise: "10.0.0.2", Alive: true, State: "alive"})
	if err := p.refresh(context.Background(), false); err != nil {
		t.Fatalf("refresh while warming up: %v", err)
	}
	if body, _ := p.Config(); body != nil {
		t.Fatalf("served a configuration before observed state synced:\n%s", body)
	}
	rec := do(p, http.MethodGet, "")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), ErrWarmingUp.Error()) {
		t.Fatalf("provider endpoint while warming up: %d %s, want 503 saying it is warming up", rec.Code, rec.Body)
	}
	if err := p.Ready(); !errors.Is(err, ErrWarmingUp) || !errors.Is(err, ErrNotRendered) {
		t.Fatalf("Ready() = %v, want ErrNotRendered wrapping ErrWarmingUp", err)
	}

	// Gossip brings the replica, then the agent says observed state has synced.
	view.SetNodeReplicas("n1", []observed.Replica{running("web", 0, map[string]string{"80/tcp": "10.0.0.1:30000"})})
	close(synced)
	waitConfig(t, p, "the replica's server after sync", func(b string) bool { return strings.Contains(b, "10.0.0.1:30000") })
	if got := metricValue(t, p.metrics.renders.WithLabelValues("changed")); got != 1 {
		t.Fatalf("renders_total{result=changed} = %v, want 1: a configuration without the server was published first", got)
	}
	if got := metricValue(t, p.metrics.warmUpExpired); got != 0 {
		t.Fatalf("warmup_expired_total = %v, want 0", got)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("Ready() after sync = %v", err)
	}
}

// TestProviderWarmUpCap: when observed state never syncs (every peer is down), the provider
// serves what it knows once the cap passes, rather than nothing forever.
func TestProviderWarmUpCap(t *testing.T) {
	p, _ := newWarmingProvider(t, make(chan struct{}), 50*time.Millisecond)
	runProvider(t, p)
	waitConfig(t, p, "the router after the warm-up cap", func(b string) bool { return strings.Contains(b, "web-http-0") })
	if got := metricValue(t, p.metrics.warmUpExpired); got != 1 {
		t.Fatalf("warmup_expired_total = %v, want 1", got)
	}
}

// TestProviderWithoutSyncedRendersAtOnce keeps the behaviour of a provider given no signal.
func TestProviderWithoutSyncedRendersAtOnce(t *testing.T) {
	p, _ := newWarmingProvider(t, nil, time.Hour)
	if err := p.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if body, _ := p.Config(); !strings.Contains(string(body), "web-http-0") {
		t.Fatalf("no configuration rendered without a Synced signal:\n%s", body)
	}
}

// TestProviderLogsRenderPanicWithStack is B15: the recovered panic's log line carries the
// stack, which names the function that panicked.
func TestProviderLogsRenderPanicWithStack(t *testing.T) {
	f := newProviderFixture(t)
	var logs lockedBuffer
	f.p.log = slog.New(slog.NewTextHandler(&logs, nil))
	view := &panickyView{Set: f.view, armed: true}
	f.p.cfg.View = view
	f.create(t, svc("web", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.test"}}}))
	if err := f.p.Sync(context.Background()); err == nil {
		t.Fatal("Sync succeeded with a panicking render")
	}
	out := logs.String()
	if !strings.Contains(out, "traefik rendering panicked") || !strings.Contains(out, "panic=boom") {
		t.Fatalf("no panic log line:\n%s", out)
	}
	if !strings.Contains(out, "stack=") || !strings.Contains(out, "panickyView).Replicas") {
		t.Fatalf("the panic log line has no stack naming the panicking function:\n%s", out)
	}
	var panics float64
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "constellation_traefik_render_panics_total" {
			panics = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if panics != 1 {
		t.Fatalf("constellation_traefik_render_panics_total = %v, want 1", panics)
	}
}

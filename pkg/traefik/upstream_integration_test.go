package traefik

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/mesh/httpproxy"
	"github.com/constellation-sh/constellation/pkg/mesh/plan"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// A real Traefik in front of an upstream Service: the route renders to the Service's virtual
// IP, where the mesh's failover proxy (built by pkg/mesh/plan from the same store and served by
// pkg/mesh/httpproxy, as the agent does) answers. The first upstream fails every request with
// 500: GETs through Traefik all succeed from the second, naming it in
// X-Constellation-Upstream; a POST without Idempotency-Key gets the first one's 500 (an
// ambiguous failure is not replayed for it).
func TestRealTraefikUpstreamService(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad", 500) }))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "good %s %s", r.Host, r.URL.Path)
	}))
	defer good.Close()

	// The virtual IP: any 127/8 address is on lo already, so the test needs no privileges.
	vip := netip.MustParseAddr("127.0.0.37")
	ln, err := net.Listen("tcp", vip.String()+":0")
	if err != nil {
		t.Fatalf("cannot listen on %s (every 127/8 address is on lo): %v", vip, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	st := store.NewMemory()
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "llm"},
		Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", ContainerPort: int32(port)}},
			Upstreams: []v1.Upstream{{URL: bad.URL}, {URL: good.URL}},
			Routes:    &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "llm.test", EntryPoints: []string{"web"}}}}}}
	s.Default()
	o, err := st.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	s = o.(*v1.Service)
	s.Status.VirtualIP = vip.String()
	if _, err := st.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}

	// The node's mesh, as pkg/agent/mesh.go wires it.
	out := plan.Compute(plan.Input{Node: "n1", Services: []*v1.Service{s}, Prefix: netip.MustParsePrefix("127.0.0.0/8")})
	hpx, err := httpproxy.New(httpproxy.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer hpx.Shutdown(context.Background())
	if err := hpx.Sync(out.HTTP); err != nil {
		t.Fatal(err)
	}

	view := observed.NewSet()
	view.SetNode(observed.Node{Name: "n1", Advertise: "127.0.0.1", Alive: true, State: "alive"})
	p, err := NewProvider(ProviderConfig{Store: st, View: view, Registerer: prometheus.NewRegistry(), Debounce: 10 * time.Millisecond,
		EntryPoints: []string{"web", "sni", "plain", "dgram"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	mux := http.NewServeMux()
	mux.Handle(ProviderPath, p)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tr := startTraefik(t, srv.URL+ProviderPath)

	do := func(method string) (int, string, http.Header, error) {
		req, _ := http.NewRequest(method, "http://"+tr.web+"/v1/chat", strings.NewReader("{}"))
		req.Host = "llm.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header, nil
	}
	eventually(t, 30*time.Second, "llm.test through Traefik", func() error {
		code, body, _, err := do("GET")
		if err != nil || code != 200 {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	goodHost := strings.TrimPrefix(good.URL, "http://")
	for i := range 20 {
		code, body, h, err := do("GET")
		if err != nil || code != 200 || h.Get(httpproxy.HeaderUpstream) != good.URL || body != "good "+goodHost+" /v1/chat" {
			t.Fatalf("GET %d: %d %q upstream %q %v; want 200 from %s with its own Host", i, code, body, h.Get(httpproxy.HeaderUpstream), err, good.URL)
		}
		if h.Get(httpproxy.HeaderRequestID) == "" {
			t.Fatalf("GET %d: no %s", i, httpproxy.HeaderRequestID)
		}
	}
	// The first upstream's breaker opened after 5 failures in a row: POSTs now go straight to
	// the second. Reset it by re-syncing with a fresh breaker policy to see the POST rule.
	tbl := out.HTTP
	tbl[0].Policy.Breaker.ConsecutiveFailures = 0
	tbl[0].Policy.Breaker.FailureRatio = 0
	if err := hpx.Sync(tbl); err != nil {
		t.Fatal(err)
	}
	code, _, h, err := do("POST")
	if err != nil || code != 500 || h.Get(httpproxy.HeaderUpstream) != bad.URL {
		t.Fatalf("POST without Idempotency-Key: %d upstream %q %v; want the first upstream's 500 (not replayed)", code, h.Get(httpproxy.HeaderUpstream), err)
	}
}

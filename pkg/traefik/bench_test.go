package traefik

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/constellation-sh/constellation/pkg/store"
)

// benchState is n Services with one HTTP route each (every fifth with sticky sessions, a health
// check and two middlewares) and 3 ready replicas each spread over 3 nodes.
func benchState(n int) State {
	st := State{}
	for i := 0; i < 3; i++ {
		st.Nodes = append(st.Nodes, observed.Node{Name: fmt.Sprintf("n%d", i), Advertise: fmt.Sprintf("10.0.0.%d", i+1), Alive: true, State: "alive"})
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("svc-%04d", i)
		route := v1.HTTPRoute{Host: name + ".example.com", EntryPoints: []string{"web"}}
		if i%5 == 0 {
			route.Sticky, route.HealthCheckPath = true, "/healthz"
			route.PathPrefix = "/app"
			route.Middlewares = &v1.HTTPMiddlewares{StripPrefix: true, Headers: map[string]string{"X-Service": name}}
		}
		s := svc(name, []v1.ServicePort{{Name: "http", ContainerPort: 8080}}, v1.Routes{HTTP: []v1.HTTPRoute{route}})
		st.Services = append(st.Services, s)
		for r := 0; r < 3; r++ {
			node := st.Nodes[r]
			st.Replicas = append(st.Replicas, observed.Replica{Service: name, Index: int32(r), Node: node.Name, State: v1.ReplicaRunning,
				Health: v1.HealthHealthy, Ports: map[string]string{"8080/tcp": fmt.Sprintf("%s:%d", node.Advertise, 30000+i)}})
		}
	}
	return st
}

var benchSizes = []int{10, 100, 1000}

// BenchmarkRender is the pure render plus JSON encoding: what changes cost besides the re-list.
func BenchmarkRender(b *testing.B) {
	for _, n := range benchSizes {
		st := benchState(n)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				cfg, _ := Render(st)
				body, err := Encode(cfg)
				if err != nil {
					b.Fatal(err)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "config-bytes")
		})
	}
}

// BenchmarkSync is one full refresh through the provider: re-list the memory store (which decodes
// every object from JSON, as the bbolt store does), render, encode, hash, publish.
func BenchmarkSync(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			p, _ := benchProvider(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchProvider(b *testing.B, n int) (*Provider, *observed.Set) {
	b.Helper()
	st := benchState(n)
	mem := store.NewMemory()
	for _, s := range st.Services {
		s.Default()
		if _, err := mem.Create(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	view := observed.NewSet()
	for _, nd := range st.Nodes {
		view.SetNode(nd)
	}
	byNode := map[string][]observed.Replica{}
	for _, r := range st.Replicas {
		byNode[r.Node] = append(byNode[r.Node], r)
	}
	for node, rs := range byNode {
		view.SetNodeReplicas(node, rs)
	}
	p, err := NewProvider(ProviderConfig{Store: mem, View: view, Registerer: prometheus.NewRegistry(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	return p, view
}

// BenchmarkServe measures GET /api/providers/traefik over loopback HTTP with keep-alive, as
// Traefik polls it, and reports p50/p99 latency. "304" sends the current ETag.
func BenchmarkServe(b *testing.B) {
	for _, n := range benchSizes {
		for _, cond := range []bool{false, true} {
			name := fmt.Sprintf("services=%d/full", n)
			if cond {
				name = fmt.Sprintf("services=%d/304", n)
			}
			b.Run(name, func(b *testing.B) {
				p, _ := benchProvider(b, n)
				srv := httptest.NewServer(p)
				defer srv.Close()
				client := srv.Client()
				_, etag := p.Config()
				lat := make([]time.Duration, 0, 4096)
				b.ResetTimer()
				for b.Loop() {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+ProviderPath, nil)
					if cond {
						req.Header.Set("If-None-Match", etag)
					}
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lat = append(lat, time.Since(start))
					if want := map[bool]int{false: 200, true: 304}[cond]; resp.StatusCode != want {
						b.Fatalf("status %d, want %d", resp.StatusCode, want)
					}
				}
				b.StopTimer()
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
				b.ReportMetric(q(0.50), "p50-ms")
				b.ReportMetric(q(0.99), "p99-ms")
			})
		}
	}
}

package traefik

import (
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/observed"
)

// An upstream Service's HTTP route is served by the local mesh's failover proxy at the
// Service's virtual IP, not by replica addresses (there are none).
func TestRenderUpstreamServiceRoute(t *testing.T) {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}, Metadata: v1.ObjectMeta{Name: "llm"},
		Spec: v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", ContainerPort: 80}},
			Upstreams: []v1.Upstream{{URL: "https://a.example.com"}},
			Routes:    &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "llm.example.com"}}}}}
	s.Default()
	st := State{Services: []*v1.Service{s}, Nodes: []observed.Node{{Name: "n1", Alive: true, Advertise: "192.0.2.1:7482"}}}
	cfg, problems := Render(st)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if got := cfg.HTTP.Services["llm-http-0"].LoadBalancer.Servers; len(got) != 0 {
		t.Fatalf("servers before the virtual IP is allocated: %+v, want none", got)
	}
	s.Status.VirtualIP = "10.213.0.30"
	cfg, _ = Render(st)
	got := cfg.HTTP.Services["llm-http-0"].LoadBalancer.Servers
	if len(got) != 1 || got[0].URL != "http://10.213.0.30:80" {
		t.Fatalf("servers %+v, want the mesh address http://10.213.0.30:80", got)
	}
}

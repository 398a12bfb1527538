package traefik

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func TestAdmitService(t *testing.T) {
	http80 := []v1.ServicePort{{Name: "http", ContainerPort: 80}, {Name: "dns", ContainerPort: 53, Protocol: v1.ProtocolUDP}}
	at := func(s *v1.Service, created time.Time) *v1.Service {
		s.Metadata.CreationTimestamp = &created
		return s
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	others := []*v1.Service{
		at(svc("shop", http80, v1.Routes{
			HTTP: []v1.HTTPRoute{{Host: "shop.example.com"}, {Host: "example.com", PathPrefix: "/shop", EntryPoints: []string{"websecure"}}},
			TCP:  []v1.TCPRoute{{HostSNI: "db.example.com", EntryPoint: "pg", Port: "http"}},
			UDP:  []v1.UDPRoute{{EntryPoint: "dns", Port: "dns"}},
		}), t0),
		// The stored version of the Service being updated: ignored.
		at(svc("web", http80, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "old.example.com"}}}), t0),
	}
	for _, tc := range []struct {
		name   string
		routes v1.Routes
		want   []string // "field: message fragment"; empty means admitted
	}{
		{name: "fine", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com"}, {Host: "old.example.com"}, {Host: "example.com", PathPrefix: "/web"}}}},
		{name: "same host other entry point", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "example.com", PathPrefix: "/shop", EntryPoints: []string{"web"}}}}},
		{name: "host taken", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "SHOP.example.com."}}},
			want: []string{"spec.routes.http[0].host: SHOP.example.com. is already routed by services/shop spec.routes.http[0]"}},
		{name: "host and path taken on all entry points", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "example.com", PathPrefix: "/shop"}}},
			want: []string{"spec.routes.http[0].host: example.com/shop is already routed by services/shop spec.routes.http[1]"}},
		{name: "empty and slash prefix are the same", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com"}, {Host: "web.example.com", PathPrefix: "/"}}},
			want: []string{"spec.routes.http[1].host: web.example.com/ is already routed by services/web spec.routes.http[0]"}},
		{name: "invalid host", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "bad_host!"}}},
			want: []string{`spec.routes.http[0]: invalid host "bad_host!"`}},
		{name: "host with a backquote", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "a`.example.com"}}},
			want: []string{"spec.routes.http[0]: invalid host"}},
		{name: "unknown port", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com", Port: "admin"}}},
			want: []string{`spec.routes.http[0].port: no tcp port named or numbered "admin" in spec.ports`}},
		{name: "udp port used for http", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com", Port: "dns"}}},
			want: []string{`spec.routes.http[0].port: no tcp port named or numbered "dns"`}},
		{name: "bad entry point", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com", EntryPoints: []string{"web", "no@pe"}}}},
			want: []string{`spec.routes.http[0].entryPoints[1]: invalid entry point "no@pe"`}},
		{name: "redirect without tls", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com", Middlewares: &v1.HTTPMiddlewares{RedirectToHTTPS: true}}}},
			want: []string{"spec.routes.http[0].middlewares.redirectToHTTPS: needs tls on the route"}},
		{name: "basic auth secret not checked", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "web.example.com", Middlewares: &v1.HTTPMiddlewares{BasicAuthSecret: "later"}}}}},
		{name: "tcp sni taken", routes: v1.Routes{TCP: []v1.TCPRoute{{HostSNI: "DB.example.com", EntryPoint: "pg"}}},
			want: []string{"spec.routes.tcp[0].hostSNI: DB.example.com on entry point pg is already routed by services/shop spec.routes.tcp[0]"}},
		{name: "tcp sni other entry point", routes: v1.Routes{TCP: []v1.TCPRoute{{HostSNI: "db.example.com", EntryPoint: "pg2"}}}},
		{name: "tcp bad sni", routes: v1.Routes{TCP: []v1.TCPRoute{{HostSNI: "db..example.com", EntryPoint: "pg"}}},
			want: []string{`spec.routes.tcp[0].hostSNI: invalid host "db..example.com"`}},
		{name: "udp entry point taken", routes: v1.Routes{UDP: []v1.UDPRoute{{EntryPoint: "dns"}}},
			want: []string{"spec.routes.udp[0].entryPoint: udp entry point dns is already routed by services/shop spec.routes.udp[0]"}},
		{name: "udp without udp port", routes: v1.Routes{UDP: []v1.UDPRoute{{EntryPoint: "dns2", Port: "http"}}},
			want: []string{`spec.routes.udp[0].port: no udp port named or numbered "http"`}},
		{name: "several problems", routes: v1.Routes{HTTP: []v1.HTTPRoute{{Host: "shop.example.com"}, {Host: "x.example.com", Port: "9"}}},
			want: []string{"spec.routes.http[0].host: shop.example.com is already routed", `spec.routes.http[1].port: no tcp port named or numbered "9"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := svc("web", http80, tc.routes)
			errs := AdmitService(s, others)
			if len(errs) != len(tc.want) {
				t.Fatalf("AdmitService = %v, want %d problems %v", errs, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if got := errs[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, w)
				}
			}
			// What admission accepts renders without a problem for this Service.
			if len(errs) == 0 {
				_, problems := Render(State{Services: append([]*v1.Service{s}, others[0])})
				for _, p := range problems {
					if p.Service == "web" && !strings.Contains(p.Field, "basicAuthSecret") {
						t.Errorf("admitted, yet rendering reports %s", p)
					}
				}
			}
		})
	}
}

// TestAdmitServiceNoOthers: a Service alone is checked against itself only.
func TestAdmitServiceNoOthers(t *testing.T) {
	s := svc("web", []v1.ServicePort{{ContainerPort: 80}}, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "a.example.com"}, {Host: "*.example.com"}}})
	if errs := AdmitService(s, nil); len(errs) != 0 {
		t.Fatalf("AdmitService = %v", errs)
	}
	if err := AdmitService(svc("web", nil, v1.Routes{HTTP: []v1.HTTPRoute{{Host: "a.example.com"}}}), nil).ToAggregate("services", "web"); err == nil ||
		err.Error() != `services/web: spec.routes.http[0].port: the service declares no tcp port in spec.ports` {
		t.Fatalf("aggregate error = %v", err)
	}
}

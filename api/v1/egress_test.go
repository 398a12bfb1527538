package v1

import (
	"strings"
	"testing"
	"time"
)

func gatewayService() *Service {
	s := &Service{TypeMeta: TypeMeta{APIVersion, KindService}}
	s.Metadata.Name = "warp"
	s.Spec = ServiceSpec{
		Image: "caomingjun/warp:latest",
		Ports: []ServicePort{{Name: "proxy", ContainerPort: 1080}},
		EgressCheck: &EgressCheck{URL: "https://cloudflare.com/cdn-cgi/trace", Expect: "warp=(on|plus)",
			MinBytes: 200, Via: "socks5:proxy", Reconnect: []string{"warp-cli", "connect"}},
	}
	return s
}

func dependentService() *Service {
	s := &Service{TypeMeta: TypeMeta{APIVersion, KindService}}
	s.Metadata.Name = "scraper"
	s.Spec = ServiceSpec{Image: "scraper:1", Network: &NetworkSpec{Mode: "service:warp"}}
	return s
}

func TestEgressValidPass(t *testing.T) {
	for _, s := range []*Service{gatewayService(), dependentService()} {
		if errs := s.Validate(); len(errs) > 0 {
			t.Errorf("%s: %v", s.Metadata.Name, errs.ToAggregate("services", s.Metadata.Name))
		}
	}
	g := gatewayService()
	g.Spec.EgressCheck.Via = ""
	if errs := g.Validate(); len(errs) > 0 {
		t.Errorf("via namespace: %v", errs)
	}
	g.Spec.EgressCheck.Via = "http:1080"
	if errs := g.Validate(); len(errs) > 0 {
		t.Errorf("via http:1080: %v", errs)
	}
}

// TestEgressValidationNamesTheField: each invalid spec is refused at its field path, with a
// message saying what to do.
func TestEgressValidationNamesTheField(t *testing.T) {
	dep := func(mut func(s *Service)) *Service { s := dependentService(); mut(s); return s }
	gw := func(mut func(s *Service)) *Service { s := gatewayService(); mut(s); return s }
	d := func(v time.Duration) *Duration { return &Duration{v} }
	cases := []struct {
		name, field, msg string
		svc              *Service
	}{
		{"mode without prefix", "spec.network.mode", "service:<name>", dep(func(s *Service) { s.Spec.Network.Mode = "container:abc" })},
		{"mode empty name", "spec.network.mode", "service:<name>", dep(func(s *Service) { s.Spec.Network.Mode = "service:" })},
		{"mode bad name", "spec.network.mode", "must name a Service", dep(func(s *Service) { s.Spec.Network.Mode = "service:Warp_1" })},
		{"own namespace", "spec.network.mode", "its own", dep(func(s *Service) { s.Spec.Network.Mode = "service:scraper" })},
		{"own ports", "spec.ports", "declare them on services/warp", dep(func(s *Service) { s.Spec.Ports = []ServicePort{{ContainerPort: 80}} })},
		{"own routes", "spec.routes", "route to a port of services/warp", dep(func(s *Service) {
			s.Spec.Routes = &Routes{HTTP: []HTTPRoute{{Host: "a.example.com"}}}
		})},
		{"own networks", "spec.networks", "are services/warp's", dep(func(s *Service) { s.Spec.Networks = []string{"back"} })},
		{"hostNetwork", "spec.hostNetwork", "cannot be combined", dep(func(s *Service) { s.Spec.HostNetwork, s.Spec.HostAccess = true, true })},
		{"http health check", "spec.healthCheck", "only exec", dep(func(s *Service) {
			s.Spec.HealthCheck = &HealthCheck{HTTP: &HTTPHealthCheck{Port: "80"}}
		})},
		{"egress check on a dependent", "spec.egressCheck", "belongs on the namespace owner", dep(func(s *Service) {
			s.Spec.EgressCheck = &EgressCheck{URL: "http://x/"}
		})},
		{"url missing", "spec.egressCheck.url", "required", gw(func(s *Service) { s.Spec.EgressCheck.URL = "" })},
		{"url relative", "spec.egressCheck.url", "absolute", gw(func(s *Service) { s.Spec.EgressCheck.URL = "/cdn-cgi/trace" })},
		{"url ftp", "spec.egressCheck.url", "http or https", gw(func(s *Service) { s.Spec.EgressCheck.URL = "ftp://x/y" })},
		{"bad regexp", "spec.egressCheck.expect", "regular expression", gw(func(s *Service) { s.Spec.EgressCheck.Expect = "warp=(on" })},
		{"negative minBytes", "spec.egressCheck.minBytes", "negative", gw(func(s *Service) { s.Spec.EgressCheck.MinBytes = -1 })},
		{"tiny interval", "spec.egressCheck.interval", "at least", gw(func(s *Service) { s.Spec.EgressCheck.Interval = d(time.Millisecond) })},
		{"timeout above interval", "spec.egressCheck.timeout", "must not exceed", gw(func(s *Service) {
			s.Spec.EgressCheck.Interval, s.Spec.EgressCheck.Timeout = d(time.Second), d(2*time.Second)
		})},
		{"default timeout above short interval is fine, explicit is not", "spec.egressCheck.timeout", "must not exceed", gw(func(s *Service) {
			s.Spec.EgressCheck.Interval, s.Spec.EgressCheck.Timeout = d(500*time.Millisecond), d(time.Second)
		})},
		{"threshold 0", "spec.egressCheck.failureThreshold", "1-100", gw(func(s *Service) { s.Spec.EgressCheck.FailureThreshold = i32(0) })},
		{"via unknown", "spec.egressCheck.via", "namespace", gw(func(s *Service) { s.Spec.EgressCheck.Via = "tun" })},
		{"via without port", "spec.egressCheck.via", "namespace", gw(func(s *Service) { s.Spec.EgressCheck.Via = "socks5:" })},
		{"via unknown port", "spec.egressCheck.via", "names no tcp port", gw(func(s *Service) { s.Spec.EgressCheck.Via = "socks5:9050" })},
		{"empty reconnect arg", "spec.egressCheck.reconnect[1]", "empty", gw(func(s *Service) { s.Spec.EgressCheck.Reconnect = []string{"warp-cli", ""} })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := c.svc.Validate()
			for _, e := range errs {
				if e.Field == c.field {
					if !strings.Contains(e.Message, c.msg) {
						t.Errorf("%s: message %q does not say %q", c.field, e.Message, c.msg)
					}
					return
				}
			}
			t.Errorf("no error at %s; got %v", c.field, errs)
		})
	}
}

func TestEgressDefaultsAndVia(t *testing.T) {
	c := EgressCheck{URL: "http://x/", Interval: &Duration{2 * time.Second}}
	d := c.Defaults()
	if d.Timeout.Duration != 2*time.Second || *d.FailureThreshold != 3 || d.Via != "namespace" {
		t.Errorf("defaults: %+v", d)
	}
	if c.Timeout != nil {
		t.Error("Defaults modified its receiver")
	}
	if v, ok := (&EgressCheck{Via: "socks5:1080"}).ParseVia(); !ok || v.Scheme != "socks5" || v.Port != "1080" {
		t.Errorf("socks5:1080 -> %+v %v", v, ok)
	}
	if v, ok := (&EgressCheck{Via: "namespace+socks5:proxy"}).ParseVia(); !ok || v.Scheme != "socks5" || v.Port != "proxy" || !v.InNamespace {
		t.Errorf("namespace+socks5:proxy -> %+v %v", v, ok)
	}
	if _, ok := (&EgressCheck{Via: "namespace+namespace"}).ParseVia(); ok {
		t.Error("namespace+namespace accepted")
	}
	if o, ok := dependentService().Spec.NetworkOwner(); !ok || o != "warp" {
		t.Errorf("owner %q %v", o, ok)
	}
}

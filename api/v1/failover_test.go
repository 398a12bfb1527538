package v1

import (
	"encoding/json"
	"testing"
	"time"
)

func upstreamService() *Service {
	s := &Service{TypeMeta: TypeMeta{APIVersion, KindService}}
	s.Metadata.Name = "llm"
	s.Spec = ServiceSpec{
		Ports:     []ServicePort{{Name: "http", ContainerPort: 80}},
		Upstreams: []Upstream{{URL: "https://api.example.com/v1"}, {URL: "http://mirror.example.com:8080", Via: "socks5://warp:1080"}},
		Routes:    &Routes{HTTP: []HTTPRoute{{Host: "llm.example.com"}}},
	}
	return s
}

func TestFailoverDefaults(t *testing.T) {
	s := upstreamService()
	s.Default()
	if errs := s.Validate(); len(errs) > 0 {
		t.Fatalf("valid upstream Service refused: %v", errs)
	}
	if *s.Spec.Replicas != 0 || s.Spec.DesiredReplicas() != 0 {
		t.Errorf("replicas = %d, want 0 for an upstream Service", *s.Spec.Replicas)
	}
	if s.Spec.Ports[0].AppProtocol != AppProtocolHTTP || !s.Spec.HTTPProxied(s.Spec.Ports[0]) {
		t.Errorf("upstream port appProtocol = %q, want http", s.Spec.Ports[0].AppProtocol)
	}
	f := s.Spec.Failover
	if f == nil {
		t.Fatal("failover not defaulted")
	}
	b := f.Breaker
	got := []any{f.On, f.Order, f.PerTryTimeout.Duration, f.FirstByteTimeout.Duration, *f.MaxAttempts, *f.RetryBudget, *f.MaxReplayBody,
		*b.ConsecutiveFailures, *b.FailureRatio, b.Window.Duration, *b.MinRequests, b.OpenFor.Duration, *b.HalfOpenRequests, *s.Spec.Upstreams[0].Weight}
	want := []any{DefaultFailoverOn, OrderPriority, 30 * time.Second, 10 * time.Second, int32(3), int32(20), int64(1 << 20),
		int32(5), 0.5, 10 * time.Second, int32(20), 30 * time.Second, int32(1), int32(1)}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("defaults\n got %s\nwant %s", gj, wj)
	}

	// A replica Service without an http port gets no failover block; with one it does.
	plain := validService()
	plain.Default()
	if plain.Spec.Failover != nil {
		t.Error("failover defaulted on a Service without appProtocol http")
	}
	h := validService()
	h.Spec.Ports[0].AppProtocol = AppProtocolHTTP
	h.Default()
	if h.Spec.Failover == nil || *h.Spec.Failover.MaxAttempts != 3 {
		t.Error("failover not defaulted for an appProtocol http port")
	}
	if errs := h.Validate(); len(errs) > 0 {
		t.Errorf("valid appProtocol http Service refused: %v", errs)
	}
}

func TestFailoverValidation(t *testing.T) {
	mod := func(f func(s *Service)) *Service {
		s := upstreamService()
		s.Default()
		f(s)
		return s
	}
	cases := []struct {
		name  string
		obj   *Service
		field string
	}{
		{"image and upstreams", mod(func(s *Service) { s.Spec.Image = "web:1" }), "spec.image"},
		{"neither image nor upstreams", mod(func(s *Service) { s.Spec.Upstreams = nil }), "spec.image"},
		{"upstream replicas", mod(func(s *Service) { s.Spec.Replicas = ptr(int32(2)) }), "spec.replicas"},
		{"upstream without port", mod(func(s *Service) { s.Spec.Ports = nil; s.Spec.Routes = nil }), "spec.ports"},
		{"upstream udp port", mod(func(s *Service) {
			s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "dns", ContainerPort: 53, Protocol: ProtocolUDP})
		}), "spec.ports[1].protocol"},
		{"upstream with env", mod(func(s *Service) { s.Spec.Env = []EnvVar{{Name: "A", Value: "b"}} }), "spec.env"},
		{"upstream with healthCheck", mod(func(s *Service) { s.Spec.HealthCheck = &HealthCheck{TCP: &TCPHealthCheck{}} }), "spec.healthCheck"},
		{"url empty", mod(func(s *Service) { s.Spec.Upstreams[0].URL = "" }), "spec.upstreams[0].url"},
		{"url scheme", mod(func(s *Service) { s.Spec.Upstreams[0].URL = "ftp://x" }), "spec.upstreams[0].url"},
		{"url no host", mod(func(s *Service) { s.Spec.Upstreams[0].URL = "http:///x" }), "spec.upstreams[0].url"},
		{"url user info", mod(func(s *Service) { s.Spec.Upstreams[0].URL = "http://u:p@x" }), "spec.upstreams[0].url"},
		{"url query", mod(func(s *Service) { s.Spec.Upstreams[0].URL = "http://x/?a=1" }), "spec.upstreams[0].url"},
		{"url duplicate", mod(func(s *Service) { s.Spec.Upstreams[1].URL = s.Spec.Upstreams[0].URL }), "spec.upstreams[1].url"},
		{"weight 0", mod(func(s *Service) { s.Spec.Upstreams[0].Weight = ptr(int32(0)) }), "spec.upstreams[0].weight"},
		{"via scheme", mod(func(s *Service) { s.Spec.Upstreams[1].Via = "socks4://warp:1080" }), "spec.upstreams[1].via"},
		{"via no port", mod(func(s *Service) { s.Spec.Upstreams[1].Via = "socks5://warp" }), "spec.upstreams[1].via"},
		{"via not a service name", mod(func(s *Service) { s.Spec.Upstreams[1].Via = "socks5://Warp.example:1" }), "spec.upstreams[1].via"},
		{"on value", mod(func(s *Service) { s.Spec.Failover.On = []string{"5xx", "600"} }), "spec.failover.on[1]"},
		{"order", mod(func(s *Service) { s.Spec.Failover.Order = "random" }), "spec.failover.order"},
		{"perTryTimeout", mod(func(s *Service) { s.Spec.Failover.PerTryTimeout = &Duration{0} }), "spec.failover.perTryTimeout"},
		{"firstByteTimeout", mod(func(s *Service) { s.Spec.Failover.FirstByteTimeout = &Duration{-time.Second} }), "spec.failover.firstByteTimeout"},
		{"maxAttempts", mod(func(s *Service) { s.Spec.Failover.MaxAttempts = ptr(int32(0)) }), "spec.failover.maxAttempts"},
		{"retryBudget", mod(func(s *Service) { s.Spec.Failover.RetryBudget = ptr(int32(101)) }), "spec.failover.retryBudget"},
		{"maxReplayBody", mod(func(s *Service) { s.Spec.Failover.MaxReplayBody = ptr(int64(-1)) }), "spec.failover.maxReplayBody"},
		{"failureRatio", mod(func(s *Service) { s.Spec.Failover.Breaker.FailureRatio = ptr(1.5) }), "spec.failover.breaker.failureRatio"},
		{"window", mod(func(s *Service) { s.Spec.Failover.Breaker.Window = &Duration{time.Millisecond} }), "spec.failover.breaker.window"},
		{"openFor", mod(func(s *Service) { s.Spec.Failover.Breaker.OpenFor = &Duration{0} }), "spec.failover.breaker.openFor"},
		{"halfOpenRequests", mod(func(s *Service) { s.Spec.Failover.Breaker.HalfOpenRequests = ptr(int32(0)) }), "spec.failover.breaker.halfOpenRequests"},
		{"consecutiveFailures", mod(func(s *Service) { s.Spec.Failover.Breaker.ConsecutiveFailures = ptr(int32(-1)) }), "spec.failover.breaker.consecutiveFailures"},
		{"appProtocol unknown", func() *Service { s := validService(); s.Spec.Ports[0].AppProtocol = "grpc"; return s }(), "spec.ports[0].appProtocol"},
		{"appProtocol http on udp", func() *Service { s := validService(); s.Spec.Ports[1].AppProtocol = "http"; return s }(), "spec.ports[1].appProtocol"},
		{"failover without http port", func() *Service { s := validService(); s.Spec.Failover = &Failover{}; return s }(), "spec.failover"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.obj.Validate()
			for _, e := range errs {
				if e.Field == tc.field {
					return
				}
			}
			t.Fatalf("errors %v; none at %s", errs, tc.field)
		})
	}
}

func TestParseVia(t *testing.T) {
	for _, tc := range []struct {
		in, scheme, svc string
		port            int
		ok              bool
	}{
		{"socks5://warp:1080", "socks5", "warp", 1080, true},
		{"http://egress:3128", "http", "egress", 3128, true},
		{"http://egress:3128/", "http", "egress", 3128, true},
		{"https://egress:3128", "", "", 0, false},
		{"socks5://warp", "", "", 0, false},
		{"socks5://warp:0", "", "", 0, false},
		{"socks5://u@warp:1", "", "", 0, false},
		{"warp", "", "", 0, false},
	} {
		s, svc, p, ok := ParseVia(tc.in)
		if s != tc.scheme || svc != tc.svc || p != tc.port || ok != tc.ok {
			t.Errorf("ParseVia(%q) = %q %q %d %v", tc.in, s, svc, p, ok)
		}
	}
}

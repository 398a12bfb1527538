package v1

import (
	"encoding/json"
	"strings"
	"testing"
)

func i32(v int32) *int32 { return &v }

func validService() *Service {
	s := &Service{TypeMeta: TypeMeta{APIVersion, KindService}}
	s.Metadata.Name = "web"
	s.Spec = ServiceSpec{
		Image:       "registry.local/web:1",
		Ports:       []ServicePort{{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: ProtocolUDP}},
		HealthCheck: &HealthCheck{HTTP: &HTTPHealthCheck{Path: "/healthz", Port: "http"}},
		Env: []EnvVar{{Name: "A", SecretRef: &SecretKeyRef{Name: "s", Key: "a"}},
			{Name: "B", SecretRef: &SecretKeyRef{Name: "s", Key: "b", Restart: SecretRestartRolling}},
			{Name: "C", SecretRef: &SecretKeyRef{Name: "s", Key: "c", Restart: SecretRestartNever}}},
		Routes: &Routes{
			HTTP: []HTTPRoute{{Host: "web.example.com", PathPrefix: "/", Port: "http"}},
			TCP:  []TCPRoute{{HostSNI: "db.example.com", Port: "http", EntryPoint: "tcp"}},
			UDP:  []UDPRoute{{Port: "dns", EntryPoint: "dns"}},
		},
	}
	return s
}

func validDNS() *DNSRecord {
	d := &DNSRecord{TypeMeta: TypeMeta{APIVersion, KindDNSRecord}}
	d.Metadata.Name = "www"
	d.Spec = DNSRecordSpec{Zone: "example.com", Name: "www.example.com", Type: RecordA, Content: "192.0.2.1"}
	return d
}

func validRS() *ReplicaSet {
	r := &ReplicaSet{TypeMeta: TypeMeta{APIVersion, KindReplicaSet}}
	r.Metadata.Name = "cache"
	r.Spec = ReplicaSetSpec{Engine: EngineRedis, Members: []string{"redis"}, Redis: &RedisReplicaSet{MasterName: "cache", Sentinel: "sentinel"}}
	return r
}

// TestValidationNamesTheField is the table of invalid objects: each must be refused with an
// error at the expected field path.
func TestValidationNamesTheField(t *testing.T) {
	svc := func(mut func(s *Service)) Object { s := validService(); mut(s); return s }
	dns := func(mut func(d *DNSRecord)) Object { d := validDNS(); mut(d); return d }
	rs := func(mut func(r *ReplicaSet)) Object { r := validRS(); mut(r); return r }
	cases := []struct {
		name  string
		obj   Object
		field string
	}{
		{"wrong apiVersion", svc(func(s *Service) { s.APIVersion = "v2" }), "apiVersion"},
		{"missing name", svc(func(s *Service) { s.Metadata.Name = "" }), "metadata.name"},
		{"uppercase name", svc(func(s *Service) { s.Metadata.Name = "Web" }), "metadata.name"},
		{"name too long", svc(func(s *Service) { s.Metadata.Name = strings.Repeat("a", 64) }), "metadata.name"},
		{"name with underscore", svc(func(s *Service) { s.Metadata.Name = "my_web" }), "metadata.name"},
		{"bad label key", svc(func(s *Service) { s.Metadata.Labels = map[string]string{"-bad": "x"} }), "metadata.labels[-bad]"},
		{"bad label value", svc(func(s *Service) { s.Metadata.Labels = map[string]string{"app": "has space"} }), "metadata.labels[app]"},
		{"bad finalizer", svc(func(s *Service) { s.Metadata.Finalizers = []string{"not a name"} }), "metadata.finalizers[0]"},
		{"duplicate finalizer", svc(func(s *Service) { s.Metadata.Finalizers = []string{"a/b", "a/b"} }), "metadata.finalizers[1]"},
		{"missing image", svc(func(s *Service) { s.Spec.Image = "" }), "spec.image"},
		{"image with space", svc(func(s *Service) { s.Spec.Image = "web 1" }), "spec.image"},
		{"negative replicas", svc(func(s *Service) { s.Spec.Replicas = i32(-1) }), "spec.replicas"},
		{"too many replicas", svc(func(s *Service) { s.Spec.Replicas = i32(MaxReplicas + 1) }), "spec.replicas"},
		{"port zero", svc(func(s *Service) { s.Spec.Ports[0].ContainerPort = 0 }), "spec.ports[0].containerPort"},
		{"port too high", svc(func(s *Service) { s.Spec.Ports[1].ContainerPort = 70000 }), "spec.ports[1].containerPort"},
		{"bad protocol", svc(func(s *Service) { s.Spec.Ports[1].Protocol = "sctp" }), "spec.ports[1].protocol"},
		{"unnamed port among several", svc(func(s *Service) { s.Spec.Ports[1].Name = "" }), "spec.ports[1].name"},
		{"duplicate port name", svc(func(s *Service) { s.Spec.Ports[1].Name = "http" }), "spec.ports[1].name"},
		{"duplicate port number", svc(func(s *Service) { s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "alt", ContainerPort: 8080}) }), "spec.ports[2].containerPort"},
		{"bad env name", svc(func(s *Service) { s.Spec.Env = []EnvVar{{Name: "1BAD", Value: "x"}} }), "spec.env[0].name"},
		{"duplicate env", svc(func(s *Service) { s.Spec.Env = []EnvVar{{Name: "A"}, {Name: "A"}} }), "spec.env[1].name"},
		{"env value and secretRef", svc(func(s *Service) {
			s.Spec.Env = []EnvVar{{Name: "A", Value: "x", SecretRef: &SecretKeyRef{Name: "s", Key: "k"}}}
		}), "spec.env[0]"},
		{"env secretRef without name", svc(func(s *Service) { s.Spec.Env = []EnvVar{{Name: "A", SecretRef: &SecretKeyRef{Key: "k"}}} }), "spec.env[0].secretRef.name"},
		{"env secretRef bad restart", svc(func(s *Service) {
			s.Spec.Env = []EnvVar{{Name: "A", SecretRef: &SecretKeyRef{Name: "s", Key: "k", Restart: "always"}}}
		}), "spec.env[0].secretRef.restart"},
		{"health check with two probes", svc(func(s *Service) { s.Spec.HealthCheck.TCP = &TCPHealthCheck{} }), "spec.healthCheck"},
		{"health check with no probe", svc(func(s *Service) { s.Spec.HealthCheck = &HealthCheck{} }), "spec.healthCheck"},
		{"health path without slash", svc(func(s *Service) { s.Spec.HealthCheck.HTTP.Path = "healthz" }), "spec.healthCheck.http.path"},
		{"health port unknown", svc(func(s *Service) { s.Spec.HealthCheck.HTTP.Port = "admin" }), "spec.healthCheck.http.port"},
		{"health interval too short", svc(func(s *Service) { s.Spec.HealthCheck.Interval = &Duration{1} }), "spec.healthCheck.interval"},
		{"health timeout over interval", svc(func(s *Service) {
			s.Spec.HealthCheck.Interval = &Duration{1e9}
			s.Spec.HealthCheck.Timeout = &Duration{2e9}
		}), "spec.healthCheck.timeout"},
		{"health retries zero", svc(func(s *Service) { s.Spec.HealthCheck.Retries = i32(0) }), "spec.healthCheck.retries"},
		{"exec without command", svc(func(s *Service) { s.Spec.HealthCheck = &HealthCheck{Exec: &ExecHealthCheck{}} }), "spec.healthCheck.exec.command"},
		{"route without host", svc(func(s *Service) { s.Spec.Routes.HTTP[0].Host = "" }), "spec.routes.http[0].host"},
		{"route with bad host", svc(func(s *Service) { s.Spec.Routes.HTTP[0].Host = "bad host!" }), "spec.routes.http[0].host"},
		{"route path without slash", svc(func(s *Service) { s.Spec.Routes.HTTP[0].PathPrefix = "api" }), "spec.routes.http[0].pathPrefix"},
		{"route path with backtick", svc(func(s *Service) { s.Spec.Routes.HTTP[0].PathPrefix = "/a`b" }), "spec.routes.http[0].pathPrefix"},
		{"route to unknown port", svc(func(s *Service) { s.Spec.Routes.HTTP[0].Port = "grpc" }), "spec.routes.http[0].port"},
		{"route to a udp port", svc(func(s *Service) { s.Spec.Routes.HTTP[0].Port = "dns" }), "spec.routes.http[0].port"},
		{"bad entry point", svc(func(s *Service) { s.Spec.Routes.HTTP[0].EntryPoints = []string{"web secure"} }), "spec.routes.http[0].entryPoints[0]"},
		{"strip prefix without prefix", svc(func(s *Service) {
			s.Spec.Routes.HTTP[0].PathPrefix = ""
			s.Spec.Routes.HTTP[0].Middlewares = &HTTPMiddlewares{StripPrefix: true}
		}), "spec.routes.http[0].middlewares.stripPrefix"},
		{"rate limit zero", svc(func(s *Service) {
			s.Spec.Routes.HTTP[0].Middlewares = &HTTPMiddlewares{RateLimit: &RateLimit{}}
		}), "spec.routes.http[0].middlewares.rateLimit.average"},
		{"too many retries", svc(func(s *Service) { s.Spec.Routes.HTTP[0].Middlewares = &HTTPMiddlewares{RetryAttempts: 11} }), "spec.routes.http[0].middlewares.retryAttempts"},
		{"tcp route bad SNI", svc(func(s *Service) { s.Spec.Routes.TCP[0].HostSNI = "not valid" }), "spec.routes.tcp[0].hostSNI"},
		{"tcp route without entry point", svc(func(s *Service) { s.Spec.Routes.TCP[0].EntryPoint = "" }), "spec.routes.tcp[0].entryPoint"},
		{"passthrough with catch-all SNI", svc(func(s *Service) {
			s.Spec.Routes.TCP[0].HostSNI = "*"
			s.Spec.Routes.TCP[0].Passthrough = true
		}), "spec.routes.tcp[0].passthrough"},
		{"udp route to tcp port", svc(func(s *Service) { s.Spec.Routes.UDP[0].Port = "http" }), "spec.routes.udp[0].port"},
		{"negative maxPerNode", svc(func(s *Service) { s.Spec.Placement = &Placement{MaxPerNode: -1} }), "spec.placement.maxPerNode"},
		{"unknown volume policy", svc(func(s *Service) { s.Spec.Placement = &Placement{Volumes: "move"} }), "spec.placement.volumes"},
		{"bad node selector", svc(func(s *Service) { s.Spec.Placement = &Placement{NodeSelector: map[string]string{"role": "a b"}} }), "spec.placement.nodeSelector[role]"},
		{"network named host", svc(func(s *Service) { s.Spec.Networks = []string{"host"} }), "spec.networks[0]"},
		{"duplicate network", svc(func(s *Service) { s.Spec.Networks = []string{"backend", "backend"} }), "spec.networks[1]"},
		{"volume without source", svc(func(s *Service) { s.Spec.Volumes = []VolumeMount{{Target: "/data"}} }), "spec.volumes[0].source"},
		{"volume relative target", svc(func(s *Service) { s.Spec.Volumes = []VolumeMount{{Source: "data", Target: "data"}} }), "spec.volumes[0].target"},
		{"bind mount unclean", svc(func(s *Service) { s.Spec.Volumes = []VolumeMount{{Source: "/srv/../etc", Target: "/data"}} }), "spec.volumes[0].source"},
		{"duplicate mount target", svc(func(s *Service) {
			s.Spec.Volumes = []VolumeMount{{Source: "a", Target: "/data"}, {Source: "b", Target: "/data"}}
		}), "spec.volumes[1].target"},
		{"cpus not a number", svc(func(s *Service) { s.Spec.Resources = &Resources{CPUs: "half"} }), "spec.resources.cpus"},
		{"memory below docker minimum", svc(func(s *Service) { s.Spec.Resources = &Resources{MemoryMB: 2} }), "spec.resources.memoryMB"},
		{"bad update order", svc(func(s *Service) { s.Spec.Update = &UpdateStrategy{Order: "random"} }), "spec.update.order"},
		{"update that cannot progress", svc(func(s *Service) {
			s.Spec.Update = &UpdateStrategy{MaxSurge: i32(0), MaxUnavailable: i32(0)}
		}), "spec.update"},
		{"dns bad zone", dns(func(d *DNSRecord) { d.Spec.Zone = "localhost" }), "spec.zone"},
		{"dns name outside zone", dns(func(d *DNSRecord) { d.Spec.Name = "www.example.org" }), "spec.name"},
		{"dns bad type", dns(func(d *DNSRecord) { d.Spec.Type = "MX" }), "spec.type"},
		{"dns bad ttl", dns(func(d *DNSRecord) { d.Spec.TTL = 30 }), "spec.ttl"},
		{"dns proxied TXT", dns(func(d *DNSRecord) { d.Spec.Type, d.Spec.Content, d.Spec.Proxied = RecordTXT, "x", true }), "spec.proxied"},
		{"dns A with IPv6", dns(func(d *DNSRecord) { d.Spec.Content = "2001:db8::1" }), "spec.content"},
		{"dns AAAA with IPv4", dns(func(d *DNSRecord) { d.Spec.Type = RecordAAAA }), "spec.content"},
		{"dns content and target", dns(func(d *DNSRecord) { d.Spec.Target = &DNSTarget{Lease: "lb"} }), "spec"},
		{"dns neither content nor target", dns(func(d *DNSRecord) { d.Spec.Content = "" }), "spec"},
		{"dns target with both", dns(func(d *DNSRecord) {
			d.Spec.Content = ""
			d.Spec.Target = &DNSTarget{Lease: "lb", NodeSelector: map[string]string{"a": "b"}}
		}), "spec.target"},
		{"dns CNAME target", dns(func(d *DNSRecord) {
			d.Spec.Type, d.Spec.Content, d.Spec.Target = RecordCNAME, "", &DNSTarget{Lease: "lb"}
		}), "spec.target"},
		{"rs bad engine", rs(func(r *ReplicaSet) { r.Spec.Engine = "mysql" }), "spec.engine"},
		{"rs no members", rs(func(r *ReplicaSet) { r.Spec.Members = nil }), "spec.members"},
		{"rs redis without sentinel", rs(func(r *ReplicaSet) { r.Spec.Redis.Sentinel = "" }), "spec.redis.sentinel"},
		{"rs mongo without config", rs(func(r *ReplicaSet) { r.Spec.Engine, r.Spec.Redis = EngineMongo, nil }), "spec.mongo"},
		{"rs priority for non-member", rs(func(r *ReplicaSet) {
			r.Spec.Engine, r.Spec.Redis = EngineMongo, nil
			r.Spec.Mongo = &MongoReplicaSet{ReplSetName: "rs0", Priorities: map[string]float64{"other": 1}}
		}), "spec.mongo.priorities[other]"},
		{"lease negative transitions", &Lease{TypeMeta: TypeMeta{APIVersion, KindLease}, Metadata: ObjectMeta{Name: "lb"},
			Spec: LeaseSpec{LeaseTransitions: -1}}, "spec.leaseTransitions"},
		{"lease holder without duration", &Lease{TypeMeta: TypeMeta{APIVersion, KindLease}, Metadata: ObjectMeta{Name: "lb"},
			Spec: LeaseSpec{HolderIdentity: "n1"}}, "spec.leaseDurationSeconds"},
		{"node bad label", &Node{TypeMeta: TypeMeta{APIVersion, KindNode}, Metadata: ObjectMeta{Name: "n1"},
			Spec: NodeSpec{Labels: map[string]string{"role": "lb!"}}}, "spec.labels[role]"},
		{"hostNetwork without maxPerNode 1", svc(func(s *Service) { s.Spec.HostAccess, s.Spec.HostNetwork = true, true }), "spec.placement.maxPerNode"},
		{"hostNetwork with networks", svc(func(s *Service) {
			s.Spec.HostAccess, s.Spec.HostNetwork, s.Spec.Networks = true, true, []string{"backend"}
			s.Spec.Placement = &Placement{MaxPerNode: 1}
		}), "spec.networks"},
		{"bad capAdd name", svc(func(s *Service) { s.Spec.CapAdd = []string{"net admin"} }), "spec.capAdd[0]"},
		{"duplicate capAdd", svc(func(s *Service) { s.Spec.CapAdd = []string{"NET_ADMIN", "cap_net_admin"} }), "spec.capAdd[1]"},
		{"bad capDrop name", svc(func(s *Service) { s.Spec.CapDrop = []string{""} }), "spec.capDrop[0]"},
		{"secret bad key", &Secret{TypeMeta: TypeMeta{APIVersion, KindSecret}, Metadata: ObjectMeta{Name: "s"},
			Spec: SecretSpec{Data: SecretData{"bad key": "hunter2"}}}, "spec.data[bad key]"},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d invalid cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.obj.Validate()
			if len(errs) == 0 {
				t.Fatalf("accepted; want an error at %s", tc.field)
			}
			for _, e := range errs {
				if e.Field == tc.field {
					return
				}
			}
			t.Fatalf("errors %v; none at %s", errs, tc.field)
		})
	}
}

func TestValidObjectsPass(t *testing.T) {
	for _, o := range []Object{validService(), validDNS(), validRS()} {
		o.Default()
		if errs := o.Validate(); len(errs) > 0 {
			t.Errorf("%s: %v", KeyOf(o), errs)
		}
	}
}

func TestInvalidErrorNamesObjectAndEveryField(t *testing.T) {
	s := validService()
	s.Spec.Ports[0].ContainerPort = 0
	s.Spec.Image = ""
	err := s.Validate().ToAggregate("services", "web")
	want := "services/web: spec.image: required; spec.ports[0].containerPort: must be 1-65535, got 0"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestSecretValuesNeverInErrorsOrFormatting(t *testing.T) {
	sec := &Secret{TypeMeta: TypeMeta{APIVersion, KindSecret}, Metadata: ObjectMeta{Name: "db"},
		Spec: SecretSpec{Data: SecretData{"bad key": "hunter2", "password": "s3cr3t"}}}
	errs := sec.Validate()
	for _, e := range errs {
		if strings.Contains(e.Error(), "hunter2") {
			t.Fatalf("error leaks a value: %v", e)
		}
	}
	for _, s := range []string{sec.Spec.Data.String(), sec.Spec.Data.GoString()} {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, "hunter2") {
			t.Fatalf("formatting leaks a value: %s", s)
		}
	}
	red := sec.Redact()
	b, _ := json.Marshal(red)
	if strings.Contains(string(b), "s3cr3t") || sec.Spec.Data["password"] != "s3cr3t" {
		t.Fatalf("Redact leaked or mutated the original: %s", b)
	}
}

func TestDecodeStrict(t *testing.T) {
	cases := map[string]string{
		`{`: "",
		`{"apiVersion":"constellation/v1","metadata":{"name":"a"}}`:                                                             "kind",
		`{"apiVersion":"constellation/v1","kind":"Pod","metadata":{"name":"a"}}`:                                                "kind",
		`{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"a"},"spec":{"imag":1}}`:                          "imag",
		`{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"a"},"spec":{"replicas":"3"}}`:                    "spec.replicas",
		`{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"a"}} {}`:                                         "",
		`{"apiVersion":"constellation/v1","kind":"Service","metadata":{"name":"a"},"spec":{"healthCheck":{"interval":"soon"}}}`: "",
	}
	for in, field := range cases {
		_, err := Decode([]byte(in))
		if err == nil {
			t.Errorf("Decode(%s) accepted", in)
			continue
		}
		var de *DecodeError
		if !asDecodeError(err, &de) || de.Field != field {
			t.Errorf("Decode(%s) = %v (field %q), want field %q", in, err, fieldOfErr(err), field)
		}
	}
}

func asDecodeError(err error, de **DecodeError) bool {
	d, ok := err.(*DecodeError)
	*de = d
	return ok
}

func fieldOfErr(err error) string {
	if d, ok := err.(*DecodeError); ok {
		return d.Field
	}
	return ""
}

func TestRoundTripAndDeepCopy(t *testing.T) {
	s := validService()
	s.Default()
	s.Spec.Env = []EnvVar{{Name: "A", Value: "1"}}
	s.Status.Conditions = []Condition{{Type: ServiceReady, Status: ConditionTrue}}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Encode(back)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the object:\n%s\n%s", b, b2)
	}
	c := s.DeepCopyObject().(*Service)
	c.Spec.Env[0].Value = "2"
	c.Spec.Ports[0].ContainerPort = 1
	*c.Spec.Replicas = 9
	if s.Spec.Env[0].Value != "1" || s.Spec.Ports[0].ContainerPort != 8080 || *s.Spec.Replicas != 1 {
		t.Fatal("deep copy shares memory with the original")
	}
}

func TestDefaults(t *testing.T) {
	s := &Service{Spec: ServiceSpec{Image: "x", HealthCheck: &HealthCheck{HTTP: &HTTPHealthCheck{}}, Ports: []ServicePort{{ContainerPort: 80}},
		Routes: &Routes{HTTP: []HTTPRoute{{Host: "a.example.com"}, {Host: "b.example.com", TLS: &RouteTLS{}}}}}}
	s.Default()
	if s.APIVersion != APIVersion || s.Kind != KindService || *s.Spec.Replicas != 1 || s.Spec.Ports[0].Protocol != ProtocolTCP ||
		s.Spec.HealthCheck.Interval.Duration != DefaultHealthInterval || *s.Spec.HealthCheck.Retries != DefaultHealthRetries ||
		s.Spec.HealthCheck.HTTP.Path != "/" || s.Spec.Update.Order != StartFirst || *s.Spec.Update.MaxSurge != 1 ||
		s.Spec.Routes.HTTP[0].EntryPoints[0] != "web" || s.Spec.Routes.HTTP[1].EntryPoints[0] != "websecure" {
		t.Fatalf("defaults not applied: %+v", s.Spec)
	}
	stop := &Service{Spec: ServiceSpec{Update: &UpdateStrategy{Order: StopFirst}}}
	stop.Default()
	if *stop.Spec.Update.MaxUnavailable != 1 || *stop.Spec.Update.MaxSurge != 0 {
		t.Fatalf("stop-first defaults: %+v", stop.Spec.Update)
	}
	hostNet := &Service{Spec: ServiceSpec{HostNetwork: true}}
	hostNet.Default()
	if hostNet.Spec.Update.Order != StopFirst || *hostNet.Spec.Update.MaxSurge != 0 {
		t.Fatalf("hostNetwork defaults to stop-first: %+v", hostNet.Spec.Update)
	}
}

func TestSelector(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front"}
	for sel, want := range map[string]bool{
		"": true, "app=web": true, "app==web": true, "app!=web": false, "tier": true, "!tier": false,
		"app=web,tier=back": false, "role": false, "!role": true,
	} {
		s, err := ParseSelector(sel)
		if err != nil {
			t.Fatalf("%q: %v", sel, err)
		}
		if got := s.Matches(labels); got != want {
			t.Errorf("%q matches = %v, want %v", sel, got, want)
		}
	}
	for _, bad := range []string{"a b=c", "app=has space", "=x"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) accepted", bad)
		}
	}
}

func TestLookupKind(t *testing.T) {
	for name, want := range map[string]string{
		"services": KindService, "service": KindService, "svc": KindService, "Service": KindService,
		"dns": KindDNSRecord, "dnsrecords": KindDNSRecord, "rs": KindReplicaSet, "no": KindNode,
		"leases": KindLease, "secret": KindSecret,
	} {
		info, ok := LookupKind(name)
		if !ok || info.Kind != want {
			t.Errorf("LookupKind(%q) = %v, %v; want %s", name, info.Kind, ok, want)
		}
	}
	if _, ok := LookupKind("pods"); ok {
		t.Error("LookupKind(pods) succeeded")
	}
}

// TestHostFieldsShape: well-formed host-access fields pass validation (whether they are allowed
// is pkg/hostaccess's decision), and HostAccessUses names what they reach.
func TestHostFieldsShape(t *testing.T) {
	s := validService()
	s.Spec.HostAccess, s.Spec.Privileged, s.Spec.HostPID = true, true, true
	s.Spec.CapAdd, s.Spec.CapDrop = []string{"cap_sys_admin", "CHOWN"}, []string{"ALL"}
	s.Spec.Volumes = []VolumeMount{{Source: "data", Target: "/data"}, {Source: "/srv", Target: "/srv"}}
	s.Spec.HostNetwork, s.Spec.Placement = true, &Placement{MaxPerNode: 1}
	s.Default()
	if errs := s.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := strings.Join(s.Spec.HostAccessUses(), ","); got != "bind,privileged,hostNetwork,hostPID,capAdd" {
		t.Errorf("uses %q", got)
	}
	plain := validService().Spec
	plain.CapAdd = []string{"NET_BIND_SERVICE"}
	if u := plain.HostAccessUses(); len(u) != 0 {
		t.Errorf("default capability and no bind mount: uses %v", u)
	}
}

func TestStickyVolumes(t *testing.T) {
	named, bind := VolumeMount{Source: "pgdata", Target: "/data"}, VolumeMount{Source: "/srv/pg", Target: "/srv"}
	for _, c := range []struct {
		name    string
		volumes []VolumeMount
		policy  VolumePolicy
		want    bool
	}{
		{"no volumes", nil, "", false},
		{"named volume, default", []VolumeMount{named}, "", true},
		{"named volume, sticky", []VolumeMount{named}, VolumesSticky, true},
		{"named volume, recreate", []VolumeMount{named}, VolumesRecreate, false},
		{"bind mount only", []VolumeMount{bind}, "", false},
		{"bind and named", []VolumeMount{bind, named}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := validService()
			s.Spec.Volumes = c.volumes
			if c.policy != "" {
				s.Spec.Placement = &Placement{Volumes: c.policy}
			}
			if got := s.Spec.StickyVolumes(); got != c.want {
				t.Errorf("StickyVolumes() = %v, want %v", got, c.want)
			}
			s.Default()
			if errs := s.Validate(); len(errs) > 0 {
				t.Errorf("valid policy %q rejected: %v", c.policy, errs)
			}
		})
	}
}

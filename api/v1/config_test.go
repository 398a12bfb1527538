package v1

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFileModeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FileMode
		ok   bool
	}{
		{`"0440"`, 0o440, true}, {`"440"`, 0o440, true}, {`"0o600"`, 0o600, true}, {`288`, 0o440, true},
		{`"0999"`, 0, false}, {`"rw"`, 0, false}, {`-1`, 0, false}, {`true`, 0, false},
	} {
		var m FileMode
		err := json.Unmarshal([]byte(tc.in), &m)
		if (err == nil) != tc.ok || (tc.ok && m != tc.want) {
			t.Errorf("unmarshal %s = %o, %v; want %o, ok %v", tc.in, m, err, tc.want, tc.ok)
		}
	}
	b, err := json.Marshal(FileMount{Secret: "db", Mode: 0o400})
	if err != nil || string(b) != `{"secret":"db","mode":"0400"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
}

func TestFilesDefault(t *testing.T) {
	s := &Service{Spec: ServiceSpec{Image: "x", Files: []FileMount{
		{Secret: "db"}, {Config: "prom", Key: "prometheus.yml"}, {Config: "c", Path: "/etc/c.conf", Mode: 0o644},
	}}}
	s.Default()
	want := []FileMount{
		{Path: "/run/secrets/db", Secret: "db", Mode: 0o400},
		{Path: "/prom", Config: "prom", Key: "prometheus.yml", Mode: 0o444},
		{Path: "/etc/c.conf", Config: "c", Mode: 0o644},
	}
	for i := range want {
		if s.Spec.Files[i] != want[i] {
			t.Errorf("files[%d] = %+v, want %+v", i, s.Spec.Files[i], want[i])
		}
	}
}

func TestFilesValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  func(*ServiceSpec)
		field string // "" for valid
		msg   string
	}{
		{"secret default path", func(s *ServiceSpec) { s.Files = []FileMount{{Secret: "db"}} }, "", ""},
		{"config with key", func(s *ServiceSpec) { s.Files = []FileMount{{Config: "prom", Key: "a.yml", Path: "/etc/prom/a.yml"}} }, "", ""},
		{"neither", func(s *ServiceSpec) { s.Files = []FileMount{{Path: "/a"}} }, "spec.files[0]", "exactly one of config and secret"},
		{"both", func(s *ServiceSpec) { s.Files = []FileMount{{Path: "/a", Config: "a", Secret: "b"}} }, "spec.files[0]", "got both"},
		{"relative", func(s *ServiceSpec) { s.Files = []FileMount{{Secret: "db"}, {Config: "c", Path: "etc/c"}} }, "spec.files[1].path", "must be absolute"},
		{"unclean", func(s *ServiceSpec) { s.Files = []FileMount{{Config: "c", Path: "/etc/../c"}} }, "spec.files[0].path", "clean absolute path"},
		{"root", func(s *ServiceSpec) { s.Files = []FileMount{{Config: "c", Path: "/"}} }, "spec.files[0].path", "clean absolute path"},
		{"duplicate", func(s *ServiceSpec) {
			s.Files = []FileMount{{Config: "c", Path: "/x"}, {Secret: "d", Path: "/x"}}
		}, "spec.files[1].path", "duplicate of spec.files[0].path"},
		{"bad name", func(s *ServiceSpec) { s.Files = []FileMount{{Config: "Bad_Name"}} }, "spec.files[0].config", "must name a Config"},
		{"bad secret name", func(s *ServiceSpec) { s.Files = []FileMount{{Secret: "x.y"}} }, "spec.files[0].secret", "must name a Secret"},
		{"bad key", func(s *ServiceSpec) { s.Files = []FileMount{{Config: "c", Key: "a/b"}} }, "spec.files[0].key", "invalid key"},
		{"mode", func(s *ServiceSpec) { s.Files = []FileMount{{Config: "c", Mode: 0o4755}} }, "spec.files[0].mode", "at most 0777"},
		{"under volume", func(s *ServiceSpec) {
			s.Volumes = []VolumeMount{{Source: "data", Target: "/data"}}
			s.Files = []FileMount{{Secret: "db", Path: "/data/pw"}}
		}, "spec.files[0].path", "must not be under spec.volumes[0].target"},
		{"next to volume", func(s *ServiceSpec) {
			s.Volumes = []VolumeMount{{Source: "data", Target: "/data"}}
			s.Files = []FileMount{{Secret: "db", Path: "/data2/pw"}}
		}, "", ""},
		{"under tmpfs", func(s *ServiceSpec) {
			s.Tmpfs = []TmpfsMount{{Target: "/run"}}
			s.Files = []FileMount{{Secret: "db"}}
		}, "spec.files[0].path", "must not be under spec.tmpfs[0].target"},
		{"read-only root", func(s *ServiceSpec) {
			s.ReadOnlyRootFilesystem = true
			s.Files = []FileMount{{Secret: "db"}}
		}, "spec.files", "readOnlyRootFilesystem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{TypeMeta: TypeMeta{APIVersion, KindService}, Metadata: ObjectMeta{Name: "web"}, Spec: ServiceSpec{Image: "nginx"}}
			tc.spec(&s.Spec)
			s.Default()
			errs := s.Validate()
			if tc.field == "" {
				if len(errs) != 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			for _, e := range errs {
				if e.Field == tc.field && strings.Contains(e.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want %s: ...%s..., got %v", tc.field, tc.msg, errs)
		})
	}
}

func TestConfigValidation(t *testing.T) {
	mk := func(f func(*ConfigSpec)) *Config {
		c := &Config{Metadata: ObjectMeta{Name: "prom"}}
		f(&c.Spec)
		c.Default()
		return c
	}
	if errs := mk(func(s *ConfigSpec) {
		s.Data = map[string]string{"prometheus.yml": "global: {}"}
		s.BinaryData = map[string][]byte{"logo.png": {0x89, 'P'}}
	}).Validate(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	for _, tc := range []struct {
		spec  func(*ConfigSpec)
		field string
	}{
		{func(s *ConfigSpec) { s.Data = map[string]string{"a b": "x"} }, "spec.data[a b]"},
		{func(s *ConfigSpec) { s.BinaryData = map[string][]byte{"a/b": nil} }, "spec.binaryData[a/b]"},
		{func(s *ConfigSpec) { s.Data = map[string]string{"a": "x"}; s.BinaryData = map[string][]byte{"a": nil} }, "spec.binaryData[a]"},
		{func(s *ConfigSpec) { s.Data = map[string]string{"a": strings.Repeat("x", MaxConfigBytes)} }, "spec"},
	} {
		errs := mk(tc.spec).Validate()
		if len(errs) != 1 || errs[0].Field != tc.field {
			t.Errorf("want one error at %s, got %v", tc.field, errs)
		}
	}
}

func TestConfigJSONRoundTrip(t *testing.T) {
	obj, err := Decode([]byte(`{"apiVersion":"constellation/v1","kind":"Config","metadata":{"name":"prom"},"spec":{"data":{"a":"x"},"binaryData":{"b":"AAEC"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := obj.(*Config)
	if v, _ := c.Spec.Value("b"); string(v) != "\x00\x01\x02" {
		t.Fatalf("binaryData b = %q", v)
	}
	if v, _ := c.Spec.Value("a"); string(v) != "x" {
		t.Fatalf("data a = %q", v)
	}
	if info, ok := LookupKind("configs"); !ok || info.Kind != KindConfig {
		t.Fatal("configs is not a kind")
	}
	if info, ok := LookupKind("cm"); !ok || info.Kind != KindConfig {
		t.Fatal("cm is not Config's short name")
	}
}

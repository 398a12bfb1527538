package spechash

import (
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func i32(v int32) *int32 { return &v }

func TestOf(t *testing.T) {
	base := v1.ServiceSpec{Image: "echo:1", Ports: []v1.ServicePort{{ContainerPort: 8080}},
		HealthCheck: &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{}}}
	h := Of(&base)
	if len(h) != Len {
		t.Fatalf("len %d", len(h))
	}
	same := base
	same.Replicas = i32(7)
	same.Placement = &v1.Placement{MaxPerNode: 1}
	same.Update = &v1.UpdateStrategy{Order: v1.StopFirst}
	same.Routes = &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "a"}}}
	same.HostAccess = true
	if Of(&same) != h {
		t.Error("replicas/placement/update/routes/hostAccess changed the hash")
	}
	// A spec written before the host-access fields existed keeps its hash.
	if want := "7ffc89c4a2944a18"; h != want {
		t.Errorf("hash of the base spec is %s, was %s before the host-access fields", h, want)
	}
	explicit := base
	explicit.Ports = []v1.ServicePort{{ContainerPort: 8080, Protocol: v1.ProtocolTCP}}
	explicit.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/"}, Interval: &v1.Duration{Duration: 2 * time.Second}}
	if Of(&explicit) != h {
		t.Error("spelling out defaults changed the hash")
	}
	if base.HealthCheck.Interval != nil || base.Ports[0].Protocol != "" {
		t.Error("Of modified its argument")
	}
	for name, f := range map[string]func(s *v1.ServiceSpec){
		"image":      func(s *v1.ServiceSpec) { s.Image = "echo:2" },
		"env":        func(s *v1.ServiceSpec) { s.Env = []v1.EnvVar{{Name: "A", Value: "1"}} },
		"args":       func(s *v1.ServiceSpec) { s.Args = []string{"-x"} },
		"volume":     func(s *v1.ServiceSpec) { s.Volumes = []v1.VolumeMount{{Source: "d", Target: "/d"}} },
		"privileged": func(s *v1.ServiceSpec) { s.Privileged = true },
		"hostPID":    func(s *v1.ServiceSpec) { s.HostPID = true },
		"capAdd":     func(s *v1.ServiceSpec) { s.CapAdd = []string{"NET_ADMIN"} },
		"capDrop":    func(s *v1.ServiceSpec) { s.CapDrop = []string{"ALL"} },
		"network":    func(s *v1.ServiceSpec) { s.Network = &v1.NetworkSpec{Mode: "service:warp"} },
	} {
		c := base
		f(&c)
		if Of(&c) == h {
			t.Errorf("%s did not change the hash", name)
		}
	}
}

func TestRevision(t *testing.T) {
	ref := func(name, key string, restart v1.SecretRestart) v1.EnvVar {
		return v1.EnvVar{Name: "V" + key, SecretRef: &v1.SecretKeyRef{Name: name, Key: key, Restart: restart}}
	}
	spec := v1.ServiceSpec{Image: "echo:1", Env: []v1.EnvVar{ref("db", "password", ""), ref("db", "user", ""), ref("api", "token", v1.SecretRestartNever)}}
	names, keys := RollingSecrets(&spec)
	if len(names) != 1 || names[0] != "db" || len(keys["db"]) != 2 || keys["api"] != nil {
		t.Fatalf("rolling secrets %v %v", names, keys)
	}
	h := Of(&spec)
	if got := Revision(&spec, nil); got != h {
		t.Errorf("no versions: %q, want the spec hash %q", got, h)
	}
	v1a := []SecretVersion{{Name: "db", UID: "u1", Digest: "d1"}}
	r1 := Revision(&spec, v1a)
	if SpecPart(r1) != h || len(r1) != 2*Len+1 || SpecPart(h) != h {
		t.Fatalf("revision %q of spec %q", r1, h)
	}
	if Revision(&spec, []SecretVersion{{Name: "db", UID: "u1", Digest: "d1"}}) != r1 {
		t.Error("not deterministic")
	}
	for name, vs := range map[string][]SecretVersion{
		"new value":  {{Name: "db", UID: "u1", Digest: "d2"}},
		"re-created": {{Name: "db", UID: "u2", Digest: "d1"}},
		"missing":    {{Name: "db"}},
	} {
		if Revision(&spec, vs) == r1 {
			t.Errorf("%s: same revision", name)
		}
	}
	explicit := spec
	explicit.Env = []v1.EnvVar{ref("db", "password", v1.SecretRestartRolling), ref("db", "user", ""), ref("api", "token", v1.SecretRestartNever)}
	if Of(&explicit) != h {
		t.Error(`restart "rolling" spelled out changed the spec hash`)
	}
	if explicit.Env[0].SecretRef.Restart != v1.SecretRestartRolling {
		t.Error("Of modified its argument")
	}

	// Lookup finds the spec of any revision of a known spec, whatever its Secret versions.
	svc := &v1.Service{Spec: spec}
	if got, ok := Lookup(svc, Revision(&spec, []SecretVersion{{Name: "db", UID: "u9", Digest: "d7"}})); !ok || got.Image != "echo:1" {
		t.Errorf("lookup of another secret version: %v %v", got, ok)
	}
	old := spec
	old.Image = "echo:0"
	svc.Status.PreviousRevision = &v1.ServiceRevision{SpecHash: Revision(&old, v1a), Spec: old}
	if got, ok := Lookup(svc, Revision(&old, []SecretVersion{{Name: "db", UID: "u1", Digest: "d3"}})); !ok || got.Image != "echo:0" {
		t.Errorf("lookup of the previous spec: %v %v", got, ok)
	}
	if _, ok := Lookup(svc, "0123456789abcdef-0123456789abcdef"); ok {
		t.Error("lookup of an unknown spec succeeded")
	}

	// Current is the scheduler's revision while it is of the current spec.
	if Current(svc) != h {
		t.Errorf("current without a revision: %q", Current(svc))
	}
	svc.Status.CurrentRevision = &v1.ServiceRevision{SpecHash: r1, Spec: spec}
	if Current(svc) != r1 {
		t.Errorf("current: %q, want %q", Current(svc), r1)
	}
	svc.Spec.Image = "echo:2"
	if Current(svc) != Of(&svc.Spec) {
		t.Errorf("current after a spec change: %q", Current(svc))
	}
}

// DataDigest is keyed and binds the Secret, the key and the value.
func TestDataDigest(t *testing.T) {
	k1, k2 := []byte("key one"), []byte("key two")
	d := DataDigest(k1, "db", "password", "hunter2")
	if len(d) != Len || d != DataDigest(k1, "db", "password", "hunter2") {
		t.Fatalf("digest %q not stable", d)
	}
	for name, other := range map[string]string{
		"other key":    DataDigest(k2, "db", "password", "hunter2"),
		"other value":  DataDigest(k1, "db", "password", "hunter3"),
		"other field":  DataDigest(k1, "db", "user", "hunter2"),
		"other secret": DataDigest(k1, "api", "password", "hunter2"),
	} {
		if other == d {
			t.Errorf("%s: same digest", name)
		}
	}
}

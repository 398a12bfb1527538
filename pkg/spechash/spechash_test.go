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
	} {
		c := base
		f(&c)
		if Of(&c) == h {
			t.Errorf("%s did not change the hash", name)
		}
	}
}

package spechash

import (
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// richOldSpec uses every container-defining field that existed before the container options,
// mode, dependsOn and hostPort.
func richOldSpec() v1.ServiceSpec {
	return v1.ServiceSpec{
		Image: "registry.example/app:1.2", Command: []string{"/app"}, Args: []string{"-v"},
		Env:         []v1.EnvVar{{Name: "A", Value: "1"}, {Name: "P", SecretRef: &v1.SecretKeyRef{Name: "db", Key: "password"}}},
		Ports:       []v1.ServicePort{{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: v1.ProtocolUDP}},
		HealthCheck: &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/health", Port: "http"}, Retries: i32(5)},
		Networks:    []string{"backend"},
		Volumes:     []v1.VolumeMount{{Source: "data", Target: "/data"}, {Source: "/srv/conf", Target: "/conf", ReadOnly: true}},
		Resources:   &v1.Resources{CPUs: "0.5", MemoryMB: 256},
		HostAccess:  true, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"MKNOD"},
	}
}

// An upgrade must not restart containers: the hash of a spec that uses none of the new fields
// is the one the previous release computed (recorded by running this spec through the release before them, commit 587de6e).
func TestOldSpecsKeepTheirHash(t *testing.T) {
	s := richOldSpec()
	if got, want := Of(&s), "7ecd63b4e7b7c035"; got != want {
		t.Errorf("hash of a spec without the new fields is %s, the previous release computed %s", got, want)
	}
	// Placement-side new fields never roll.
	same := richOldSpec()
	same.DependsOn = []v1.Dependency{{Service: "db", Condition: v1.DependencyHealthy}}
	if Of(&same) != Of(&s) {
		t.Error("dependsOn changed the hash")
	}
	g := richOldSpec()
	g.Mode = v1.ModeGlobal
	r := richOldSpec()
	r.Mode = v1.ModeReplicated
	if Of(&g) != Of(&s) || Of(&r) != Of(&s) {
		t.Error("mode changed the hash")
	}
	// Spelling out a device's defaults changes nothing.
	d1, d2 := richOldSpec(), richOldSpec()
	d1.Devices = []v1.Device{{HostPath: "/dev/dri"}}
	d2.Devices = []v1.Device{{HostPath: "/dev/dri", ContainerPath: "/dev/dri", Permissions: "rwm"}}
	if Of(&d1) != Of(&d2) {
		t.Error("a device's defaults spelled out changed the hash")
	}
}

func TestNewContainerFieldsRollTheHash(t *testing.T) {
	base := richOldSpec()
	h := Of(&base)
	seen := map[string]string{}
	for name, f := range map[string]func(s *v1.ServiceSpec){
		"hostPort":               func(s *v1.ServiceSpec) { s.Ports[1].HostPort = 53 },
		"hostIPC":                func(s *v1.ServiceSpec) { s.HostIPC = true },
		"user":                   func(s *v1.ServiceSpec) { s.User = "1000:1000" },
		"workingDir":             func(s *v1.ServiceSpec) { s.WorkingDir = "/srv" },
		"devices":                func(s *v1.ServiceSpec) { s.Devices = []v1.Device{{HostPath: "/dev/dri"}} },
		"sysctls":                func(s *v1.ServiceSpec) { s.Sysctls = map[string]string{"net.core.somaxconn": "1024"} },
		"tmpfs":                  func(s *v1.ServiceSpec) { s.Tmpfs = []v1.TmpfsMount{{Target: "/run"}} },
		"readOnlyRootFilesystem": func(s *v1.ServiceSpec) { s.ReadOnlyRootFilesystem = true },
		"ulimits":                func(s *v1.ServiceSpec) { s.Ulimits = []v1.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}} },
		"extraHosts":             func(s *v1.ServiceSpec) { s.ExtraHosts = []v1.ExtraHost{{Host: "db", IP: "10.0.0.5"}} },
		"init":                   func(s *v1.ServiceSpec) { s.Init = true },
		"stopSignal":             func(s *v1.ServiceSpec) { s.StopSignal = "SIGQUIT" },
		"stopGracePeriod":        func(s *v1.ServiceSpec) { s.StopGracePeriod = &v1.Duration{Duration: 30 * time.Second} },
		"shmSizeMB":              func(s *v1.ServiceSpec) { s.ShmSizeMB = 128 },
		"labels":                 func(s *v1.ServiceSpec) { s.Labels = map[string]string{"team": "infra"} },
		"logging":                func(s *v1.ServiceSpec) { s.Logging = &v1.Logging{Driver: "local"} },
	} {
		c := richOldSpec()
		f(&c)
		got := Of(&c)
		if got == h {
			t.Errorf("%s did not change the hash", name)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s hash the same", name, other)
		}
		seen[got] = name
	}
}

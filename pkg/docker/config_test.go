package docker

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/spechash"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func i32(v int32) *int32 { return &v }

func dur(d time.Duration) *v1.Duration { return &v1.Duration{Duration: d} }

func secrets(name, key string) (string, error) {
	if name == "db" && key == "password" {
		return "s3cret", nil
	}
	return "", ErrSecretNotFound
}

func TestBuildCreateConfigGolden(t *testing.T) {
	cases := map[string]*v1.Service{
		"minimal": {Metadata: v1.ObjectMeta{Name: "hello"}, Spec: v1.ServiceSpec{Image: "constellation-test/echo:1"}},
		"http-health": {Metadata: v1.ObjectMeta{Name: "web"}, Spec: v1.ServiceSpec{
			Image: "constellation-test/echo:1", Replicas: i32(3),
			Ports:       []v1.ServicePort{{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: v1.ProtocolUDP}},
			HealthCheck: &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: "/healthz", Port: "http"}, Interval: dur(time.Second)},
		}},
		"host-access": {Metadata: v1.ObjectMeta{Name: "agent"}, Spec: v1.ServiceSpec{
			Image: "constellation-test/echo:1", HostAccess: true, Privileged: true, HostPID: true,
			CapAdd: []string{"cap_net_admin", "SYS_PTRACE"}, CapDrop: []string{"ALL"},
			Volumes: []v1.VolumeMount{{Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}},
		}},
		"host-network": {Metadata: v1.ObjectMeta{Name: "edge"}, Spec: v1.ServiceSpec{
			Image: "constellation-test/echo:1", HostAccess: true, HostNetwork: true,
			Ports:     []v1.ServicePort{{Name: "http", ContainerPort: 8080}, {Name: "dns", ContainerPort: 53, Protocol: v1.ProtocolUDP}},
			Placement: &v1.Placement{MaxPerNode: 1},
		}},
		"netns-dependent": {Metadata: v1.ObjectMeta{Name: "scraper"}, Spec: v1.ServiceSpec{
			Image: "constellation-test/echo:1", Network: &v1.NetworkSpec{Mode: "service:warp"},
			Env: []v1.EnvVar{{Name: "ALL_PROXY", Value: "socks5h://127.0.0.1:1080"}},
		}},
		"full": {Metadata: v1.ObjectMeta{Name: "api"}, Spec: v1.ServiceSpec{
			Image: "constellation-test/echo:2", Command: []string{"/app"}, Args: []string{"-listen", ":9000"},
			Env:   []v1.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "DB_PASSWORD", SecretRef: &v1.SecretKeyRef{Name: "db", Key: "password"}}},
			Ports: []v1.ServicePort{{ContainerPort: 9000}},
			HealthCheck: &v1.HealthCheck{Exec: &v1.ExecHealthCheck{Command: []string{"/app", "-probe", "http://127.0.0.1:9000/healthz"}},
				Interval: dur(500 * time.Millisecond), Timeout: dur(time.Second), Retries: i32(5), StartPeriod: dur(3 * time.Second)},
			Networks:  []string{"backend", "publicnet"},
			Volumes:   []v1.VolumeMount{{Source: "api-data", Target: "/data"}, {Source: "/etc/ssl", Target: "/etc/ssl", ReadOnly: true}},
			Resources: &v1.Resources{CPUs: "0.5", MemoryMB: 256},
		}},
		"container-options": {Metadata: v1.ObjectMeta{Name: "dns"}, Spec: v1.ServiceSpec{
			Image: "constellation-test/echo:1", HostAccess: true, HostIPC: true,
			Ports: []v1.ServicePort{{Name: "dns", ContainerPort: 5353, Protocol: v1.ProtocolUDP, HostPort: 53}, {Name: "http", ContainerPort: 8080}},
			ContainerOptions: v1.ContainerOptions{
				User: "65534:65534", WorkingDir: "/work", Devices: []v1.Device{{HostPath: "/dev/dri/renderD128"}, {HostPath: "/dev/ttyUSB0", ContainerPath: "/dev/zigbee", Permissions: "rw"}},
				Sysctls: map[string]string{"net.core.somaxconn": "1024"}, Tmpfs: []v1.TmpfsMount{{Target: "/work", SizeMB: 16, Mode: 0o1777}, {Target: "/run"}},
				ReadOnlyRootFilesystem: true, Ulimits: []v1.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
				ExtraHosts: []v1.ExtraHost{{Host: "db.local", IP: "10.1.2.3"}, {Host: "gw", IP: "host-gateway"}}, Init: true,
				StopSignal: "SIGINT", StopGracePeriod: dur(30 * time.Second), ShmSizeMB: 32,
				Labels:  map[string]string{"com.example.team": "infra"},
				Logging: &v1.Logging{Driver: "local", Options: map[string]string{"max-size": "5m"}},
			},
		}},
	}
	for name, svc := range cases {
		t.Run(name, func(t *testing.T) {
			svc.Default()
			before, _ := json.Marshal(svc)
			cfg, err := BuildCreateConfig(svc, 2, spechash.Of(&svc.Spec), BuildOptions{Node: "node-a", PublishIP: "10.0.0.5", NamePrefix: "t-", Secret: secrets, NetnsOwner: "0123456789abcdef"})
			if err != nil {
				t.Fatal(err)
			}
			after, _ := json.Marshal(svc)
			if string(before) != string(after) {
				t.Fatal("BuildCreateConfig modified the service")
			}
			got, err := json.MarshalIndent(cfg, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != string(got)+"\n" {
				t.Errorf("create config differs from %s (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

func TestBuildCreateConfigErrors(t *testing.T) {
	svc := &v1.Service{Metadata: v1.ObjectMeta{Name: "x"}, Spec: v1.ServiceSpec{Image: "i",
		Env: []v1.EnvVar{{Name: "P", SecretRef: &v1.SecretKeyRef{Name: "missing", Key: "k"}}}}}
	svc.Default()
	if _, err := BuildCreateConfig(svc, 0, "h", BuildOptions{Node: "n", Secret: secrets}); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("missing secret: got %v", err)
	}
	if _, err := BuildCreateConfig(svc, 0, "h", BuildOptions{Node: "n"}); !errors.Is(err, ErrSecretNotFound) {
		t.Errorf("no resolver: got %v", err)
	}
	svc.Spec.Env = nil
	svc.Spec.Resources = &v1.Resources{CPUs: "lots"}
	if _, err := BuildCreateConfig(svc, 0, "h", BuildOptions{Node: "n"}); err == nil {
		t.Error("bad cpus accepted")
	}
}

func TestContainerName(t *testing.T) {
	if got := ContainerName("p-", "web", 3, "0123456789abcdef"); got != "p-web-3-01234567" {
		t.Errorf("got %q", got)
	}
}

// With the mesh's name server, a container resolves through it with the mesh domain as search
// domain, and the bare Service name is no network alias (it would shadow the mesh address on
// Docker's embedded DNS); a bad address is refused.
func TestBuildCreateConfigMeshDNS(t *testing.T) {
	svc := &v1.Service{Metadata: v1.ObjectMeta{Name: "web"}, Spec: v1.ServiceSpec{Image: "registry.local/web:1",
		Ports: []v1.ServicePort{{Name: "http", ContainerPort: 8080}}, Networks: []string{"backend"}}}
	svc.Default()
	cfg, err := BuildCreateConfig(svc, 1, "h", BuildOptions{Node: "n", MeshDNS: "10.213.0.1", MeshDomain: "constellation.internal"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.HostConfig.DNS) != "[10.213.0.1]" || fmt.Sprint(cfg.HostConfig.DNSSearch) != "[constellation.internal]" {
		t.Fatalf("dns %v search %v", cfg.HostConfig.DNS, cfg.HostConfig.DNSSearch)
	}
	if got := cfg.Networking.EndpointsConfig["backend"].Aliases; fmt.Sprint(got) != "[web-1]" {
		t.Fatalf("aliases %v, want [web-1]", got)
	}
	plain, _ := BuildCreateConfig(svc, 1, "h", BuildOptions{Node: "n"})
	if len(plain.HostConfig.DNS) != 0 || fmt.Sprint(plain.Networking.EndpointsConfig["backend"].Aliases) != "[web web-1]" {
		t.Fatalf("without the mesh: dns %v aliases %v", plain.HostConfig.DNS, plain.Networking.EndpointsConfig["backend"].Aliases)
	}
	if _, err := BuildCreateConfig(svc, 1, "h", BuildOptions{Node: "n", MeshDNS: "not-an-ip"}); err == nil {
		t.Fatal("a bad mesh DNS address was accepted")
	}
}

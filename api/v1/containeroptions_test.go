package v1

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullOptions is a Service using every new field validly.
func fullOptions() *Service {
	s := validService()
	s.Spec.Ports[1].HostPort = 53
	s.Spec.HostAccess = true
	s.Spec.ContainerOptions = ContainerOptions{
		User: "1000:1000", WorkingDir: "/srv", Devices: []Device{{HostPath: "/dev/dri", Permissions: "rw"}},
		Sysctls: map[string]string{"net.core.somaxconn": "1024"}, Tmpfs: []TmpfsMount{{Target: "/run", SizeMB: 64, Mode: 0o1777}},
		ReadOnlyRootFilesystem: true, Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "core", Soft: -1, Hard: -1}},
		ExtraHosts: []ExtraHost{{Host: "db.local", IP: "10.0.0.5"}, {Host: "gw", IP: "host-gateway"}}, Init: true,
		StopSignal: "SIGQUIT", StopGracePeriod: &Duration{30 * time.Second}, ShmSizeMB: 128,
		Labels: map[string]string{"com.example.team": "infra"}, Logging: &Logging{Driver: "local", Options: map[string]string{"max-size": "5m"}},
	}
	s.Spec.DependsOn = []Dependency{{Service: "db", Condition: DependencyHealthy}, {Service: "cache"}}
	return s
}

func TestContainerOptionsValid(t *testing.T) {
	s := fullOptions()
	s.Default()
	if errs := s.Validate(); len(errs) > 0 {
		t.Fatalf("valid options refused: %v", errs)
	}
	g := validService()
	g.Spec.Mode = ModeGlobal
	g.Spec.Placement = &Placement{NodeSelector: map[string]string{"role": "edge"}}
	g.Default()
	if errs := g.Validate(); len(errs) > 0 {
		t.Fatalf("global service refused: %v", errs)
	}
	if g.Spec.Replicas != nil || g.Spec.Update.Order != StopFirst {
		t.Errorf("global defaults: replicas %v order %s, want nil and stop-first", g.Spec.Replicas, g.Spec.Update.Order)
	}
	hp := validService()
	hp.Spec.Ports[0].HostPort = 80
	hp.Default()
	if hp.Spec.Update.Order != StopFirst {
		t.Errorf("hostPort service: order %s, want stop-first", hp.Spec.Update.Order)
	}
	if got := hp.Spec.HostPorts(); !reflect.DeepEqual(got, []string{"80/tcp"}) {
		t.Errorf("HostPorts %v", got)
	}
}

// Every bad value is refused at its field with a message that says what is expected, and
// validation changes nothing in the object.
func TestContainerOptionsRefused(t *testing.T) {
	cases := []struct {
		name, field, msg string
		mut              func(s *Service)
	}{
		{"bad user", "spec.user", "uid:gid", func(s *Service) { s.Spec.User = "root user" }},
		{"relative workingDir", "spec.workingDir", "absolute", func(s *Service) { s.Spec.WorkingDir = "srv" }},
		{"device not absolute", "spec.devices[0].hostPath", "absolute", func(s *Service) { s.Spec.Devices[0].HostPath = "dev/dri" }},
		{"device perms", "spec.devices[0].permissions", "r, w and m", func(s *Service) { s.Spec.Devices[0].Permissions = "rx" }},
		{"duplicate device", "spec.devices[1].containerPath", "duplicate", func(s *Service) {
			s.Spec.Devices = append(s.Spec.Devices, Device{HostPath: "/dev/dri1", ContainerPath: "/dev/dri"})
		}},
		{"sysctl key", "spec.sysctls[somaxconn]", "dotted", func(s *Service) { s.Spec.Sysctls = map[string]string{"somaxconn": "1"} }},
		{"net sysctl with hostNetwork", "spec.sysctls[net.core.somaxconn]", "hostNetwork", func(s *Service) {
			s.Spec.HostNetwork, s.Spec.Placement = true, &Placement{MaxPerNode: 1}
			s.Spec.Ports[1].HostPort = 0
		}},
		{"tmpfs relative", "spec.tmpfs[0].target", "absolute", func(s *Service) { s.Spec.Tmpfs[0].Target = "run" }},
		{"tmpfs on a volume", "spec.tmpfs[0].target", "duplicate mount target", func(s *Service) {
			s.Spec.Volumes = []VolumeMount{{Source: "data", Target: "/run"}}
		}},
		{"tmpfs size", "spec.tmpfs[0].sizeMB", "negative", func(s *Service) { s.Spec.Tmpfs[0].SizeMB = -1 }},
		{"tmpfs mode", "spec.tmpfs[0].mode", "0o7777", func(s *Service) { s.Spec.Tmpfs[0].Mode = 0o17777 }},
		{"ulimit name", "spec.ulimits[0].name", "nofile", func(s *Service) { s.Spec.Ulimits[0].Name = "files" }},
		{"ulimit soft above hard", "spec.ulimits[0].soft", "must not exceed hard", func(s *Service) { s.Spec.Ulimits[0].Soft = 4096 }},
		{"duplicate ulimit", "spec.ulimits[1].name", "duplicate", func(s *Service) { s.Spec.Ulimits[1].Name = "nofile" }},
		{"extra host ip", "spec.extraHosts[0].ip", "IP address", func(s *Service) { s.Spec.ExtraHosts[0].IP = "db" }},
		{"extra host name", "spec.extraHosts[0].host", "host name", func(s *Service) { s.Spec.ExtraHosts[0].Host = "a b" }},
		{"stop signal", "spec.stopSignal", "signal name", func(s *Service) { s.Spec.StopSignal = "quit now" }},
		{"stop signal number", "spec.stopSignal", "1-64", func(s *Service) { s.Spec.StopSignal = "99" }},
		{"stop grace fraction", "spec.stopGracePeriod", "whole seconds", func(s *Service) { s.Spec.StopGracePeriod = &Duration{1500 * time.Millisecond} }},
		{"stop grace negative", "spec.stopGracePeriod", "negative", func(s *Service) { s.Spec.StopGracePeriod = &Duration{-time.Second} }},
		{"shm size", "spec.shmSizeMB", "negative", func(s *Service) { s.Spec.ShmSizeMB = -5 }},
		{"reserved label", "spec.labels[constellation.service]", "reserved", func(s *Service) {
			s.Spec.Labels = map[string]string{"constellation.service": "other"}
		}},
		{"reserved label any case", "spec.labels[Constellation.Node]", "reserved", func(s *Service) {
			s.Spec.Labels = map[string]string{"Constellation.Node": "n9"}
		}},
		{"label key with space", "spec.labels[a b]", "invalid label key", func(s *Service) { s.Spec.Labels = map[string]string{"a b": "x"} }},
		{"log driver", "spec.logging.driver", "log driver", func(s *Service) { s.Spec.Logging.Driver = "" }},
		{"log option", "spec.logging.options[a=b]", "invalid option", func(s *Service) { s.Spec.Logging.Options = map[string]string{"a=b": "1"} }},
		{"hostPort range", "spec.ports[0].hostPort", "1-65535", func(s *Service) { s.Spec.Ports[0].HostPort = 70000 }},
		{"duplicate hostPort", "spec.ports[2].hostPort", "duplicate host port 53/udp (also spec.ports[1])", func(s *Service) {
			s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "dns2", ContainerPort: 5353, Protocol: ProtocolUDP, HostPort: 53})
		}},
		{"hostPort with hostNetwork", "spec.ports[1].hostPort", "hostNetwork", func(s *Service) {
			s.Spec.HostNetwork, s.Spec.Placement = true, &Placement{MaxPerNode: 1}
			s.Spec.Sysctls = nil
		}},
		{"bad mode", "spec.mode", "\"global\"", func(s *Service) { s.Spec.Mode = "daemonset" }},
		{"global with replicas", "spec.replicas", "mode global", func(s *Service) { s.Spec.Mode = ModeGlobal; s.Spec.Replicas = i32(3) }},
		{"global with maxPerNode 2", "spec.placement.maxPerNode", "0 or 1", func(s *Service) {
			s.Spec.Mode, s.Spec.Placement = ModeGlobal, &Placement{MaxPerNode: 2}
		}},
		{"global start-first", "spec.update.order", "stop-first", func(s *Service) {
			s.Spec.Mode, s.Spec.Update = ModeGlobal, &UpdateStrategy{Order: StartFirst}
		}},
		{"dependsOn bad name", "spec.dependsOn[0].service", "must name a Service", func(s *Service) { s.Spec.DependsOn[0].Service = "DB" }},
		{"dependsOn self", "spec.dependsOn[0].service", "itself", func(s *Service) { s.Spec.DependsOn[0].Service = "web" }},
		{"dependsOn duplicate", "spec.dependsOn[1].service", "duplicate", func(s *Service) { s.Spec.DependsOn[1].Service = "db" }},
		{"dependsOn condition", "spec.dependsOn[0].condition", "\"healthy\"", func(s *Service) { s.Spec.DependsOn[0].Condition = "completed" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := fullOptions()
			tc.mut(s)
			before := s.DeepCopyObject()
			errs := s.Validate()
			if !reflect.DeepEqual(before, Object(s)) {
				t.Error("Validate changed the object")
			}
			for _, e := range errs {
				if e.Field == tc.field {
					if !strings.Contains(e.Message, tc.msg) {
						t.Errorf("%s: %q does not say %q", e.Field, e.Message, tc.msg)
					}
					return
				}
			}
			t.Fatalf("errors %v; none at %s", errs, tc.field)
		})
	}
}

func TestHostAccessUsesNewFields(t *testing.T) {
	s := ServiceSpec{HostIPC: true, ContainerOptions: ContainerOptions{Devices: []Device{{HostPath: "/dev/kvm"}}}}
	if got := s.HostAccessUses(); !reflect.DeepEqual(got, []string{"hostIPC", "devices"}) {
		t.Errorf("uses %v", got)
	}
}

func svcDeps(name string, deps ...string) *Service {
	s := validService()
	s.Metadata.Name = name
	for _, d := range deps {
		s.Spec.DependsOn = append(s.Spec.DependsOn, Dependency{Service: d})
	}
	return s
}

func TestDependencyCycle(t *testing.T) {
	stored := []*Service{svcDeps("api", "db", "web"), svcDeps("db")}
	if e := DependencyCycle(svcDeps("web", "api"), stored); e == nil || e.Field != "spec.dependsOn" || e.Message != "cycle web -> api -> web" {
		t.Errorf("web against stored api: %v", e)
	}
	if e := DependencyCycle(svcDeps("web", "db"), stored); e != nil {
		t.Errorf("no cycle, got %v", e)
	}
	// The candidate replaces its stored version.
	if e := DependencyCycle(svcDeps("api", "db"), append(stored, svcDeps("web", "api"))); e != nil {
		t.Errorf("api dropping web: %v", e)
	}
	long := []*Service{svcDeps("a", "b"), svcDeps("b", "c"), svcDeps("c", "x"), svcDeps("x")}
	if e := DependencyCycle(svcDeps("x", "a"), long); e == nil || e.Message != "cycle x -> a -> b -> c -> x" {
		t.Errorf("long cycle: %v", e)
	}
	// A cycle that does not pass through the candidate is the other Services' business.
	if e := DependencyCycle(svcDeps("z"), []*Service{svcDeps("p", "q"), svcDeps("q", "p")}); e != nil {
		t.Errorf("unrelated cycle reported on z: %v", e)
	}
}

func TestDependencyCycles(t *testing.T) {
	got := DependencyCycles([]*Service{svcDeps("web", "api"), svcDeps("api", "web"), svcDeps("db"), svcDeps("x", "y"), svcDeps("y", "z"), svcDeps("z", "x")})
	if len(got) != 2 || got["api"] == nil || got["api"].Message != "cycle api -> web -> api" || got["x"] == nil || got["x"].Message != "cycle x -> y -> z -> x" {
		t.Errorf("cycles %v", got)
	}
	if got := DependencyCycles([]*Service{svcDeps("web", "api", "db"), svcDeps("api", "db"), svcDeps("db")}); len(got) != 0 {
		t.Errorf("diamond reported as a cycle: %v", got)
	}
}

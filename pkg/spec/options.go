package spec

import (
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Options for every Service field that real stacks need (docs/spec.md). Each one sets or appends
// to one field, so a stack reads as a list of what its Service has, and `ctl convert` can write
// any Service it maps as calls to these.

// Command sets the container's entrypoint (Compose's entrypoint; Docker's Entrypoint).
func Command(cmd ...string) ServiceOption { return func(s *v1.Service) { s.Spec.Command = cmd } }

// HostPort declares a TCP port published on the node's address at hostPort (Traefik itself, DNS).
// Scheduling keeps two replicas holding the same host port off one node.
func HostPort(name string, containerPort, hostPort int32) ServiceOption {
	return PortSpec(v1.ServicePort{Name: name, ContainerPort: containerPort, Protocol: v1.ProtocolTCP, HostPort: hostPort})
}

// HostUDPPort is HostPort for UDP (STUN, DNS).
func HostUDPPort(name string, containerPort, hostPort int32) ServiceOption {
	return PortSpec(v1.ServicePort{Name: name, ContainerPort: containerPort, Protocol: v1.ProtocolUDP, HostPort: hostPort})
}

// PortSpec declares a port as written.
func PortSpec(p v1.ServicePort) ServiceOption {
	return func(s *v1.Service) { s.Spec.Ports = append(s.Spec.Ports, p) }
}

// ExecHealth runs cmd inside the container every interval (Compose's healthcheck test CMD; for
// CMD-SHELL pass "/bin/sh", "-c", line).
func ExecHealth(interval time.Duration, cmd ...string) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.HealthCheck = &v1.HealthCheck{Exec: &v1.ExecHealthCheck{Command: cmd}, Interval: &v1.Duration{Duration: interval}}
	}
}

// HealthTiming sets the health check's timeout, retries and start period (zero leaves the
// default). It must follow the option that sets the check.
func HealthTiming(timeout time.Duration, retries int32, startPeriod time.Duration) ServiceOption {
	return func(s *v1.Service) {
		hc := s.Spec.HealthCheck
		if hc == nil {
			return
		}
		if timeout > 0 {
			hc.Timeout = &v1.Duration{Duration: timeout}
		}
		if retries > 0 {
			hc.Retries = &retries
		}
		if startPeriod > 0 {
			hc.StartPeriod = &v1.Duration{Duration: startPeriod}
		}
	}
}

func routes(s *v1.Service) *v1.Routes {
	if s.Spec.Routes == nil {
		s.Spec.Routes = &v1.Routes{}
	}
	return s.Spec.Routes
}

// Route adds an HTTP route as written (entry points, TLS, middlewares).
func Route(r v1.HTTPRoute) ServiceOption {
	return func(s *v1.Service) { routes(s).HTTP = append(routes(s).HTTP, r) }
}

// HTTPSRoute routes host to port through the "websecure" entry point with a certificate from
// resolver (empty: Traefik's default certificate).
func HTTPSRoute(host, port, resolver string) ServiceOption {
	return Route(v1.HTTPRoute{Host: host, Port: v1.PortRef(port), EntryPoints: []string{"websecure"},
		TLS: &v1.RouteTLS{CertResolver: resolver}})
}

// TCPRoute routes TLS connections for hostSNI ("*" for any) on entryPoint to port.
func TCPRoute(hostSNI, entryPoint, port string) ServiceOption {
	return func(s *v1.Service) {
		routes(s).TCP = append(routes(s).TCP, v1.TCPRoute{HostSNI: hostSNI, EntryPoint: entryPoint, Port: v1.PortRef(port)})
	}
}

// UDPRoute routes datagrams on entryPoint to port.
func UDPRoute(entryPoint, port string) ServiceOption {
	return func(s *v1.Service) {
		routes(s).UDP = append(routes(s).UDP, v1.UDPRoute{EntryPoint: entryPoint, Port: v1.PortRef(port)})
	}
}

// ReadOnlyVolume mounts a named volume or host path read-only.
func ReadOnlyVolume(source, target string) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Volumes = append(s.Spec.Volumes, v1.VolumeMount{Source: source, Target: target, ReadOnly: true})
	}
}

// Global runs one replica on every node matching the selector (node-exporter, cAdvisor,
// promtail), following nodes as they come and go.
func Global() ServiceOption {
	return func(s *v1.Service) { s.Spec.Mode = v1.ModeGlobal; s.Spec.Replicas = nil }
}

// DependsOn starts the Service's replicas only once service is started.
func DependsOn(service string) ServiceOption { return dependsOn(service, v1.DependencyStarted) }

// DependsOnHealthy starts the Service's replicas only once service reports healthy.
func DependsOnHealthy(service string) ServiceOption { return dependsOn(service, v1.DependencyHealthy) }

func dependsOn(service string, c v1.DependencyCondition) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.DependsOn = append(s.Spec.DependsOn, v1.Dependency{Service: service, Condition: c})
	}
}

// Resources limits CPUs ("0.5"; empty: no limit) and memory in MiB (0: no limit).
func Resources(cpus string, memoryMB int64) ServiceOption {
	return func(s *v1.Service) { s.Spec.Resources = &v1.Resources{CPUs: cpus, MemoryMB: memoryMB} }
}

// NetworkOf puts the containers in service's network namespace (Compose's network_mode:
// service:NAME): their traffic leaves through it, and they publish no ports of their own.
func NetworkOf(service string) ServiceOption {
	return func(s *v1.Service) { s.Spec.Network = &v1.NetworkSpec{Mode: v1.NetworkModeServicePrefix + service} }
}

// Privileged runs the containers privileged (host access: also needs HostAccess and the agent's
// --security flags).
func Privileged() ServiceOption { return func(s *v1.Service) { s.Spec.Privileged = true } }

// HostNetwork shares the node's network namespace (host access).
func HostNetwork() ServiceOption { return func(s *v1.Service) { s.Spec.HostNetwork = true } }

// HostPID shares the node's PID namespace (host access).
func HostPID() ServiceOption { return func(s *v1.Service) { s.Spec.HostPID = true } }

// HostIPC shares the node's IPC namespace (host access).
func HostIPC() ServiceOption { return func(s *v1.Service) { s.Spec.HostIPC = true } }

// CapAdd adds Linux capabilities; any outside Docker's default set is host access.
func CapAdd(caps ...string) ServiceOption {
	return func(s *v1.Service) { s.Spec.CapAdd = append(s.Spec.CapAdd, caps...) }
}

// CapDrop drops Linux capabilities ("ALL" for every one).
func CapDrop(caps ...string) ServiceOption {
	return func(s *v1.Service) { s.Spec.CapDrop = append(s.Spec.CapDrop, caps...) }
}

// User runs the container's process as "uid", "uid:gid", "name" or "name:group".
func User(u string) ServiceOption { return func(s *v1.Service) { s.Spec.User = u } }

// WorkingDir sets the process's working directory.
func WorkingDir(d string) ServiceOption { return func(s *v1.Service) { s.Spec.WorkingDir = d } }

// Device maps a host device (host access). containerPath empty: the same path; permissions
// empty: "rwm".
func Device(hostPath, containerPath, permissions string) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Devices = append(s.Spec.Devices, v1.Device{HostPath: hostPath, ContainerPath: containerPath, Permissions: permissions})
	}
}

// Sysctl sets a namespaced kernel parameter.
func Sysctl(key, value string) ServiceOption {
	return func(s *v1.Service) {
		if s.Spec.Sysctls == nil {
			s.Spec.Sysctls = map[string]string{}
		}
		s.Spec.Sysctls[key] = value
	}
}

// Tmpfs mounts a tmpfs at target (sizeMB 0: Docker's default, half the node's memory).
func Tmpfs(target string, sizeMB int64) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Tmpfs = append(s.Spec.Tmpfs, v1.TmpfsMount{Target: target, SizeMB: sizeMB})
	}
}

// ReadOnlyRoot mounts the container's root filesystem read-only.
func ReadOnlyRoot() ServiceOption {
	return func(s *v1.Service) { s.Spec.ReadOnlyRootFilesystem = true }
}

// Ulimit sets a resource limit (-1: unlimited).
func Ulimit(name string, soft, hard int64) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Ulimits = append(s.Spec.Ulimits, v1.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
}

// ExtraHost adds a line to /etc/hosts (ip may be "host-gateway").
func ExtraHost(host, ip string) ServiceOption {
	return func(s *v1.Service) { s.Spec.ExtraHosts = append(s.Spec.ExtraHosts, v1.ExtraHost{Host: host, IP: ip}) }
}

// Init runs Docker's init as PID 1, reaping zombies and forwarding signals.
func Init() ServiceOption { return func(s *v1.Service) { s.Spec.Init = true } }

// StopSignal sets the signal that asks the process to stop ("SIGQUIT").
func StopSignal(sig string) ServiceOption { return func(s *v1.Service) { s.Spec.StopSignal = sig } }

// StopGracePeriod is how long a stop waits before SIGKILL (whole seconds).
func StopGracePeriod(d time.Duration) ServiceOption {
	return func(s *v1.Service) { s.Spec.StopGracePeriod = &v1.Duration{Duration: d} }
}

// ShmSizeMB sizes /dev/shm.
func ShmSizeMB(n int64) ServiceOption { return func(s *v1.Service) { s.Spec.ShmSizeMB = n } }

// ContainerLabels sets Docker labels on the containers (not the Service's metadata labels).
func ContainerLabels(kv ...string) ServiceOption {
	return func(s *v1.Service) {
		if s.Spec.Labels == nil {
			s.Spec.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Spec.Labels[kv[i]] = kv[i+1]
		}
	}
}

// Logging selects a Docker log driver with options given as key, value pairs.
func Logging(driver string, kv ...string) ServiceOption {
	return func(s *v1.Service) {
		l := &v1.Logging{Driver: driver}
		for i := 0; i+1 < len(kv); i += 2 {
			if l.Options == nil {
				l.Options = map[string]string{}
			}
			l.Options[kv[i]] = kv[i+1]
		}
		s.Spec.Logging = l
	}
}

// Upstreams makes the Service a failover proxy on its mesh address in front of urls (tried in
// order; docs/proxy.md) instead of running an image. Declare the ports clients use.
func Upstreams(urls ...string) ServiceOption {
	return func(s *v1.Service) {
		for _, u := range urls {
			s.Spec.Upstreams = append(s.Spec.Upstreams, v1.Upstream{URL: u})
		}
	}
}

// FailoverOn sets the answers that make the proxy try the next upstream ("429", "5xx", "timeout").
func FailoverOn(on ...string) ServiceOption {
	return func(s *v1.Service) {
		if s.Spec.Failover == nil {
			s.Spec.Failover = &v1.Failover{}
		}
		s.Spec.Failover.On = on
	}
}

// With applies a function to the Service, for the rare field no option covers.
func With(f func(*v1.ServiceSpec)) ServiceOption { return func(s *v1.Service) { f(&s.Spec) } }

// RouteTCP adds a TCP route as written (passthrough).
func RouteTCP(r v1.TCPRoute) ServiceOption {
	return func(s *v1.Service) { routes(s).TCP = append(routes(s).TCP, r) }
}

// TmpfsMode is Tmpfs with permission bits (0o1777).
func TmpfsMode(target string, sizeMB int64, mode uint32) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Tmpfs = append(s.Spec.Tmpfs, v1.TmpfsMount{Target: target, SizeMB: sizeMB, Mode: mode})
	}
}

// Update sets the rolling-update strategy.
func Update(u v1.UpdateStrategy) ServiceOption { return func(s *v1.Service) { s.Spec.Update = &u } }

// Int32 returns a pointer to n, for optional fields.
func Int32(n int32) *int32 { return &n }

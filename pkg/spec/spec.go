package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// ServiceOption shapes a Service.
type ServiceOption func(*v1.Service)

// Service returns a Service named name with image and options applied.
func Service(name, image string, opts ...ServiceOption) *v1.Service {
	s := &v1.Service{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService}}
	s.Metadata.Name = name
	s.Spec.Image = image
	for _, o := range opts {
		o(s)
	}
	return s
}

// Replicas sets the replica count.
func Replicas(n int32) ServiceOption { return func(s *v1.Service) { s.Spec.Replicas = &n } }

// Labels adds labels.
func Labels(kv ...string) ServiceOption {
	return func(s *v1.Service) {
		if s.Metadata.Labels == nil {
			s.Metadata.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Metadata.Labels[kv[i]] = kv[i+1]
		}
	}
}

// Port declares a TCP port.
func Port(name string, containerPort int32) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: name, ContainerPort: containerPort, Protocol: v1.ProtocolTCP})
	}
}

// UDPPort declares a UDP port.
func UDPPort(name string, containerPort int32) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: name, ContainerPort: containerPort, Protocol: v1.ProtocolUDP})
	}
}

// Env sets a literal environment variable.
func Env(name, value string) ServiceOption {
	return func(s *v1.Service) { s.Spec.Env = append(s.Spec.Env, v1.EnvVar{Name: name, Value: value}) }
}

// EnvFromSecret sets a variable from a Secret's key. A change of the Secret rolls the Service.
func EnvFromSecret(name, secret, key string) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Env = append(s.Spec.Env, v1.EnvVar{Name: name, SecretRef: &v1.SecretKeyRef{Name: secret, Key: key}})
	}
}

// EnvFromSecretNoRestart is EnvFromSecret with restart: never: a change of the Secret leaves
// running replicas alone, and only containers created later read the new value.
func EnvFromSecretNoRestart(name, secret, key string) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Env = append(s.Spec.Env, v1.EnvVar{Name: name,
			SecretRef: &v1.SecretKeyRef{Name: secret, Key: key, Restart: v1.SecretRestartNever}})
	}
}

// Args sets the container's arguments.
func Args(args ...string) ServiceOption { return func(s *v1.Service) { s.Spec.Args = args } }

// HTTPHealth checks GET path on port every interval.
func HTTPHealth(path, port string, interval time.Duration) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.HealthCheck = &v1.HealthCheck{HTTP: &v1.HTTPHealthCheck{Path: path, Port: v1.PortRef(port)}, Interval: &v1.Duration{Duration: interval}}
	}
}

// TCPHealth checks that port accepts connections.
func TCPHealth(port string, interval time.Duration) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.HealthCheck = &v1.HealthCheck{TCP: &v1.TCPHealthCheck{Port: v1.PortRef(port)}, Interval: &v1.Duration{Duration: interval}}
	}
}

// HTTPRoute routes host (and path prefix) to port through Traefik's "web" entry point.
func HTTPRoute(host, pathPrefix, port string) ServiceOption {
	return func(s *v1.Service) {
		if s.Spec.Routes == nil {
			s.Spec.Routes = &v1.Routes{}
		}
		s.Spec.Routes.HTTP = append(s.Spec.Routes.HTTP, v1.HTTPRoute{Host: host, PathPrefix: pathPrefix, Port: v1.PortRef(port)})
	}
}

// Volume mounts a named volume or an absolute host path at target. A host path (a bind mount)
// is host access: the Service must also say HostAccess().
func Volume(source, target string) ServiceOption {
	return func(s *v1.Service) {
		s.Spec.Volumes = append(s.Spec.Volumes, v1.VolumeMount{Source: source, Target: target})
	}
}

// HostAccess sets spec.hostAccess, the Service's opt-in to bind mounts, privileged, host
// namespaces and added capabilities (docs/security.md "Host access"; sensitive ones also need
// the agent's --security flags).
func HostAccess() ServiceOption {
	return func(s *v1.Service) { s.Spec.HostAccess = true }
}

// Networks joins Docker networks.
func Networks(names ...string) ServiceOption {
	return func(s *v1.Service) { s.Spec.Networks = append(s.Spec.Networks, names...) }
}

// NodeSelector restricts placement to nodes with these labels.
func NodeSelector(kv ...string) ServiceOption {
	return func(s *v1.Service) {
		if s.Spec.Placement == nil {
			s.Spec.Placement = &v1.Placement{}
		}
		if s.Spec.Placement.NodeSelector == nil {
			s.Spec.Placement.NodeSelector = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Spec.Placement.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

// MaxPerNode caps replicas per node.
func MaxPerNode(n int32) ServiceOption {
	return func(s *v1.Service) {
		if s.Spec.Placement == nil {
			s.Spec.Placement = &v1.Placement{}
		}
		s.Spec.Placement.MaxPerNode = n
	}
}

// VolumePolicy sets placement.volumes (v1.VolumesSticky, the default, or v1.VolumesRecreate).
func VolumePolicy(p v1.VolumePolicy) ServiceOption {
	return func(s *v1.Service) {
		if s.Spec.Placement == nil {
			s.Spec.Placement = &v1.Placement{}
		}
		s.Spec.Placement.Volumes = p
	}
}

// Secret returns a Secret.
func Secret(name string, data map[string]string) *v1.Secret {
	s := &v1.Secret{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret}}
	s.Metadata.Name = name
	s.Spec.Data = data
	return s
}

// DNSRecord returns a literal A/AAAA/CNAME/TXT record.
func DNSRecord(name, zone, fqdn string, typ v1.RecordType, content string) *v1.DNSRecord {
	d := &v1.DNSRecord{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindDNSRecord}}
	d.Metadata.Name = name
	d.Spec = v1.DNSRecordSpec{Zone: zone, Name: fqdn, Type: typ, Content: content}
	return d
}

// LeaseRecord returns an A record that follows the holder of a Lease ("lb").
func LeaseRecord(name, zone, fqdn, lease string) *v1.DNSRecord {
	d := DNSRecord(name, zone, fqdn, v1.RecordA, "")
	d.Spec.Target = &v1.DNSTarget{Lease: lease}
	return d
}

// Encode defaults and validates objs and returns them as an indented JSON array. Every problem
// of every object is reported.
func Encode(objs ...v1.Object) ([]byte, error) {
	var errs []error
	seen := map[v1.Key]bool{}
	for i, o := range objs {
		if o == nil {
			errs = append(errs, fmt.Errorf("object %d is nil", i))
			continue
		}
		o.Default()
		info, _ := v1.LookupKind(o.GetTypeMeta().Kind)
		if err := o.Validate().ToAggregate(info.Plural, o.GetMetadata().Name); err != nil {
			errs = append(errs, err)
		}
		k := v1.KeyOf(o)
		if seen[k] {
			errs = append(errs, fmt.Errorf("%s: defined twice", k))
		}
		seen[k] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return json.MarshalIndent(objs, "", "  ")
}

// Print writes objs to stdout as Encode does, or the problems to stderr and exits 1.
func Print(objs ...v1.Object) { os.Exit(print(os.Stdout, os.Stderr, objs...)) }

func print(stdout, stderr io.Writer, objs ...v1.Object) int {
	b, err := Encode(objs...)
	if err != nil {
		fmt.Fprintln(stderr, "spec:", err)
		return 1
	}
	_, _ = stdout.Write(append(b, '\n'))
	return 0
}

// Itoa is strconv.Itoa, for building names in loops.
func Itoa(i int) string { return strconv.Itoa(i) }

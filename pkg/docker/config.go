package docker

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// ErrSecretNotFound is returned (wrapped) when an env var's Secret or key cannot be resolved.
var ErrSecretNotFound = errors.New("docker: secret not found")

// CreateConfig is everything needed to create one container: what ContainerCreate takes, plus
// the networks beyond the first, which API 1.41 cannot attach at create time and which are
// connected before the container starts.
type CreateConfig struct {
	Name          string                               `json:"name"`
	Config        *container.Config                    `json:"config"`
	HostConfig    *container.HostConfig                `json:"hostConfig"`
	Networking    *network.NetworkingConfig            `json:"networking,omitempty"`
	ExtraNetworks map[string]*network.EndpointSettings `json:"extraNetworks,omitempty"`
}

// BuildOptions are the node-side inputs of BuildCreateConfig.
type BuildOptions struct {
	// Node is this node's name, written in the constellation.node label. Required.
	Node string
	// PublishIP is the host address container ports are published on. Default 0.0.0.0.
	PublishIP string
	// NamePrefix is put before every container name (tests use a per-run prefix). Default "".
	NamePrefix string
	// StopTimeout is how long Docker waits after SIGTERM before SIGKILL. Default 10s.
	StopTimeoutSeconds int
	// Secret resolves an env var's secretRef. Nil: a spec with a secretRef fails.
	Secret func(name, key string) (string, error)
	// MeshDNS is the mesh's name server (docs/mesh.md): when set, it is the container's
	// resolver (Docker's --dns; on a user network Docker's embedded DNS forwards to it) with
	// MeshDomain as search domain, and the bare Service name is no network alias, so that
	// <svc> always means the mesh address. Default "": Docker's resolvers, aliases as before.
	MeshDNS    string
	MeshDomain string
	// NetnsOwner is the ID of the container whose network namespace the container joins
	// (spec.network, Docker's container:<id>): it gets no hostname, ports, DNS or networks of
	// its own (Docker refuses them there), and the ID goes in LabelNetnsOwner. Required with
	// spec.network; ignored without it.
	NetnsOwner string
}

// ContainerName is the Docker name of replica index of service with spec hash: names are unique
// per node, and a new spec never collides with the container it replaces.
func ContainerName(prefix, service string, index int32, hash string) string {
	if len(hash) > 8 {
		hash = hash[:8]
	}
	return fmt.Sprintf("%s%s-%d-%s", prefix, service, index, hash)
}

// BuildCreateConfig translates replica index of svc, running the spec with hash hash, into
// Docker's create configuration. svc must be defaulted and valid; it is not modified.
func BuildCreateConfig(svc *v1.Service, index int32, hash string, o BuildOptions) (CreateConfig, error) {
	sp := &svc.Spec
	name := svc.Metadata.Name
	cfg := &container.Config{
		Image: sp.Image,
		Labels: map[string]string{
			LabelService:  name,
			LabelReplica:  strconv.Itoa(int(index)),
			LabelNode:     o.Node,
			LabelSpecHash: hash,
		},
		Hostname: fmt.Sprintf("%s-%d", name, index),
	}
	if len(sp.Command) > 0 {
		cfg.Entrypoint = append([]string(nil), sp.Command...)
	}
	if len(sp.Args) > 0 {
		cfg.Cmd = append([]string(nil), sp.Args...)
	}
	for i, e := range sp.Env {
		val := e.Value
		if e.SecretRef != nil {
			if o.Secret == nil {
				return CreateConfig{}, fmt.Errorf("spec.env[%d]: secret %q: %w", i, e.SecretRef.Name, ErrSecretNotFound)
			}
			v, err := o.Secret(e.SecretRef.Name, e.SecretRef.Key)
			if err != nil {
				return CreateConfig{}, fmt.Errorf("spec.env[%d]: secret %q key %q: %w", i, e.SecretRef.Name, e.SecretRef.Key, err)
			}
			val = v
		}
		cfg.Env = append(cfg.Env, e.Name+"="+val)
	}
	stop := o.StopTimeoutSeconds
	if stop <= 0 {
		stop = 10
	}
	cfg.StopTimeout = &stop

	hc := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig:     defaultLogConfig(),
	}
	pubIP := o.PublishIP
	if pubIP == "" {
		pubIP = "0.0.0.0"
	}
	ip, err := netip.ParseAddr(pubIP)
	if err != nil {
		return CreateConfig{}, fmt.Errorf("publish address %q: %w", pubIP, err)
	}
	for i, p := range sp.Ports {
		proto := network.TCP
		if p.Protocol == v1.ProtocolUDP {
			proto = network.UDP
		}
		port, ok := network.PortFrom(uint16(p.ContainerPort), proto)
		if !ok {
			return CreateConfig{}, fmt.Errorf("spec.ports[%d].containerPort: invalid port %d", i, p.ContainerPort)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
			hc.PortBindings = network.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		if sp.HostNetwork {
			continue // the container listens on the node's own ports: nothing to publish
		}
		// An empty host port lets Docker pick an ephemeral one: no two replicas on a node
		// collide. A fixed hostPort is the scheduler's to keep to one replica per node.
		hc.PortBindings[port] = []network.PortBinding{{HostIP: ip, HostPort: hostPortOf(p)}}
	}
	cfg.Healthcheck = healthConfig(sp.HealthCheck)
	if r := sp.Resources; r != nil {
		if r.CPUs != "" {
			f, err := strconv.ParseFloat(r.CPUs, 64)
			if err != nil {
				return CreateConfig{}, fmt.Errorf("spec.resources.cpus: %w", err)
			}
			hc.NanoCPUs = int64(f * 1e9)
		}
		if r.MemoryMB > 0 {
			hc.Memory = r.MemoryMB << 20
		}
	}
	// Host access (pkg/hostaccess decides whether it is allowed, before this is built).
	hc.Privileged = sp.Privileged
	if sp.HostPID {
		hc.PidMode = "host"
	}
	for _, c := range sp.CapAdd {
		hc.CapAdd = append(hc.CapAdd, v1.NormalizeCapability(c))
	}
	for _, c := range sp.CapDrop {
		hc.CapDrop = append(hc.CapDrop, v1.NormalizeCapability(c))
	}
	for _, v := range sp.Volumes {
		m := mount.Mount{Type: mount.TypeVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if strings.HasPrefix(v.Source, "/") {
			m.Type = mount.TypeBind
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	applyContainerOptions(sp, cfg, hc)
	for k, v := range map[string]string{LabelService: name, LabelReplica: strconv.Itoa(int(index)), LabelNode: o.Node, LabelSpecHash: hash} {
		cfg.Labels[k] = v // the agent's own labels win over spec.labels (validation refuses them there)
	}
	if sp.HostNetwork {
		// The node's network namespace (validation keeps spec.networks empty then).
		hc.NetworkMode = container.NetworkMode(network.NetworkHost)
		hc.PortBindings = nil
	}
	out := CreateConfig{Name: ContainerName(o.NamePrefix, name, index, hash), Config: cfg, HostConfig: hc}
	if _, shared := sp.NetworkOwner(); shared {
		if o.NetnsOwner == "" {
			return CreateConfig{}, fmt.Errorf("spec.network: no container of the owner to join")
		}
		// Everything network-side is the owner's: Docker refuses a hostname, DNS, ports or
		// networks with container:<id> (validation keeps ports and networks empty).
		hc.NetworkMode = container.NetworkMode("container:" + o.NetnsOwner)
		cfg.Labels[LabelNetnsOwner] = o.NetnsOwner
		cfg.Hostname, cfg.ExposedPorts, hc.PortBindings = "", nil, nil
		return out, nil
	}
	aliases := []string{name, fmt.Sprintf("%s-%d", name, index)}
	if o.MeshDNS != "" && !sp.HostNetwork {
		dns, err := netip.ParseAddr(o.MeshDNS)
		if err != nil {
			return CreateConfig{}, fmt.Errorf("mesh DNS address %q: %w", o.MeshDNS, err)
		}
		hc.DNS = []netip.Addr{dns}
		if o.MeshDomain != "" {
			hc.DNSSearch = []string{o.MeshDomain}
		}
		aliases = aliases[1:]
	}
	for i, n := range sp.Networks {
		ep := &network.EndpointSettings{Aliases: append([]string(nil), aliases...)}
		if i == 0 {
			hc.NetworkMode = container.NetworkMode(n)
			out.Networking = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{n: ep}}
			continue
		}
		if out.ExtraNetworks == nil {
			out.ExtraNetworks = map[string]*network.EndpointSettings{}
		}
		out.ExtraNetworks[n] = ep
	}
	return out, nil
}

// healthConfig gives Docker exec checks; HTTP and TCP checks are the agent's, so Docker's own
// (including one baked into the image) is switched off then. Without a health check in the
// spec the image's own HEALTHCHECK, if any, applies (nil: inherit), and the node reconciler
// restarts the container when it turns unhealthy — Docker itself never does (moby#28400).
func healthConfig(h *v1.HealthCheck) *container.HealthConfig {
	if h == nil {
		return nil
	}
	if h.Exec == nil {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	c := &container.HealthConfig{Test: append([]string{"CMD"}, h.Exec.Command...)}
	if h.Interval != nil {
		c.Interval = h.Interval.Duration
	}
	if h.Timeout != nil {
		c.Timeout = h.Timeout.Duration
	}
	if h.Retries != nil {
		c.Retries = int(*h.Retries)
	}
	if h.StartPeriod != nil {
		c.StartPeriod = h.StartPeriod.Duration
	}
	return c
}

// Containers: list, inspect, create, start, stop and remove, and the Container view read from an
// inspect.

package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Container is what the controllers need to know of a container.
type Container struct {
	ID     string
	Name   string
	Image  string
	Labels map[string]string
	// State is Docker's: created, running, paused, restarting, removing, exited or dead.
	State      string
	Running    bool
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// Health is Docker's health status when the container has a Docker HEALTHCHECK (exec
	// checks): starting, healthy or unhealthy; "" otherwise.
	Health string
	// HealthLog is the output of the last Docker health probe, if any.
	HealthLog string
	// Ports maps "8080/tcp" to the published host address ("0.0.0.0:49153").
	Ports map[string]HostPort
	// Networks maps network names to the container's address on them.
	Networks map[string]string
	// Pid is the container's init process on the node (0 when it does not run).
	Pid int
	// NetworkMode is Docker's HostConfig.NetworkMode ("bridge", "host", "container:<id>").
	NetworkMode string
}

// HostPort is one published port.
type HostPort struct {
	IP   string
	Port string
}

// List returns the containers (running or not) carrying all of labels.
func (c *Client) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	var out []Container
	err := c.call(ctx, "list containers", labelString(labels), c.t.Call, func(ctx context.Context) error {
		var err error
		out, err = c.list(ctx, labels)
		return err
	})
	return out, err
}

func labelString(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (c *Client) list(ctx context.Context, labels map[string]string) ([]Container, error) {
	f := client.Filters{}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	res, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, wrap(err, "list containers")
	}
	out := make([]Container, 0, len(res.Items))
	for _, s := range res.Items {
		ct, err := c.inspect(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ct)
	}
	return out, nil
}

// Inspect returns one container.
func (c *Client) Inspect(ctx context.Context, id string) (Container, error) {
	var out Container
	err := c.call(ctx, "inspect container", short(id), c.t.Call, func(ctx context.Context) error {
		var err error
		out, err = c.inspect(ctx, id)
		return err
	})
	return out, err
}

func (c *Client) inspect(ctx context.Context, id string) (Container, error) {
	res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Container{}, wrap(err, "inspect container %s", short(id))
	}
	return fromInspect(res.Container), nil
}

func fromInspect(r container.InspectResponse) Container {
	ct := Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Image: r.Image}
	if r.Config != nil {
		ct.Labels = r.Config.Labels
		ct.Image = r.Config.Image
	}
	if s := r.State; s != nil {
		ct.State = string(s.Status)
		ct.Running = s.Running
		ct.ExitCode = s.ExitCode
		ct.OOMKilled = s.OOMKilled
		ct.Error = s.Error
		ct.StartedAt, _ = time.Parse(time.RFC3339Nano, s.StartedAt)
		ct.Pid = s.Pid
		ct.FinishedAt, _ = time.Parse(time.RFC3339Nano, s.FinishedAt)
		if h := s.Health; h != nil {
			ct.Health = string(h.Status)
			if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
				ct.HealthLog = strings.TrimSpace(h.Log[n-1].Output)
			}
		}
	}
	if r.HostConfig != nil {
		ct.NetworkMode = string(r.HostConfig.NetworkMode)
	}
	if ns := r.NetworkSettings; ns != nil {
		for p, bs := range ns.Ports {
			for _, b := range bs {
				if b.HostPort == "" {
					continue
				}
				if ct.Ports == nil {
					ct.Ports = map[string]HostPort{}
				}
				// Docker may list an IPv6 binding too; keep the IPv4 one.
				if old, ok := ct.Ports[p.String()]; ok && old.IP != "" && !strings.Contains(old.IP, ":") {
					continue
				}
				ip := ""
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				ct.Ports[p.String()] = HostPort{IP: ip, Port: b.HostPort}
			}
		}
		for name, ep := range ns.Networks {
			if ct.Networks == nil {
				ct.Networks = map[string]string{}
			}
			addr := ""
			if ep != nil && ep.IPAddress.IsValid() {
				addr = ep.IPAddress.String()
			}
			ct.Networks[name] = addr
		}
	}
	return ct
}

// Create creates (does not start) a container and attaches its extra networks.
func (c *Client) Create(ctx context.Context, cfg CreateConfig) (string, error) {
	var id string
	err := c.call(ctx, "create container", cfg.Name, c.t.Create, func(ctx context.Context) error {
		var err error
		id, err = c.create(ctx, cfg)
		return err
	})
	return id, err
}

func (c *Client) create(ctx context.Context, cfg CreateConfig) (string, error) {
	res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: cfg.Name, Config: cfg.Config, HostConfig: cfg.HostConfig, NetworkingConfig: cfg.Networking,
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "image") {
			return "", fmt.Errorf("create container %s: %w: %w", cfg.Name, ErrImageNotFound, err)
		}
		if cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in use") {
			return "", fmt.Errorf("create container %s: %w: %w", cfg.Name, ErrNameConflict, err)
		}
		return "", wrap(err, "create container %s", cfg.Name)
	}
	for name, ep := range cfg.ExtraNetworks {
		if _, err := c.api.NetworkConnect(ctx, name, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: ep}); err != nil {
			return res.ID, wrap(err, "connect container %s to network %s", cfg.Name, name)
		}
	}
	return res.ID, nil
}

// Start starts a created or stopped container.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.call(ctx, "start container", short(id), c.t.Call, func(ctx context.Context) error {
		_, err := c.api.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return wrap(err, "start container %s", short(id))
	})
}

// Stop sends SIGTERM, then SIGKILL after timeout. The call is bounded by timeout +
// Timeouts.StopGrace: the engine answers once the container is gone.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(timeout / time.Second)
	return c.call(ctx, "stop container", short(id), timeout+c.t.StopGrace, func(ctx context.Context) error {
		_, err := c.api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
		return wrap(err, "stop container %s", short(id))
	})
}

// Remove force-removes a container and its anonymous volumes. A container already gone is not
// an error.
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.call(ctx, "remove container", short(id), c.t.Call, func(ctx context.Context) error {
		_, err := c.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove container %s", short(id))
	})
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

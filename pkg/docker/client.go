package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Errors of this package. Docker's own errors are wrapped in them, so check with errors.Is.
var (
	ErrNotFound      = errors.New("docker: not found")
	ErrImageNotFound = errors.New("docker: image not found")
	ErrPortConflict  = errors.New("docker: port already allocated")
	ErrVolumeSource  = errors.New("docker: bind mount source does not exist")
	ErrUnavailable   = errors.New("docker: daemon unavailable")
	ErrNameConflict  = errors.New("docker: container name already in use")
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
}

// HostPort is one published port.
type HostPort struct {
	IP   string
	Port string
}

// Event is a container event from the daemon.
type Event struct {
	ContainerID string
	// Action is Docker's: create, start, die, stop, kill, destroy, health_status: healthy, ...
	Action string
	Labels map[string]string
	Time   time.Time
}

// Client talks to one Docker engine.
type Client struct {
	api *client.Client
}

// New connects to host ("" means DOCKER_HOST, else the local socket), negotiating the API
// version on the first request.
func New(host string) (*Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Client{api: c}, nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// APIVersion returns the negotiated API version (after the first request).
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// Ping checks the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return wrap(err, "ping")
}

// wrap maps Docker's errors to this package's sentinels.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	msg := err.Error()
	switch {
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	case strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use"):
		return fmt.Errorf("%s: %w: %w", what, ErrPortConflict, err)
	case strings.Contains(msg, "bind source path does not exist"):
		return fmt.Errorf("%s: %w: %w", what, ErrVolumeSource, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// List returns the containers (running or not) carrying all of labels.
func (c *Client) List(ctx context.Context, labels map[string]string) ([]Container, error) {
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
		ct, err := c.Inspect(ctx, s.ID)
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
		ct.FinishedAt, _ = time.Parse(time.RFC3339Nano, s.FinishedAt)
		if h := s.Health; h != nil {
			ct.Health = string(h.Status)
			if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
				ct.HealthLog = strings.TrimSpace(h.Log[n-1].Output)
			}
		}
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
	_, err := c.api.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return wrap(err, "start container %s", short(id))
}

// Stop sends SIGTERM, then SIGKILL after timeout.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(timeout / time.Second)
	_, err := c.api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	return wrap(err, "stop container %s", short(id))
}

// Remove force-removes a container and its anonymous volumes. A container already gone is not
// an error.
func (c *Client) Remove(ctx context.Context, id string) error {
	_, err := c.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap(err, "remove container %s", short(id))
}

// EnsureImage makes sure ref is present locally, pulling it when it is not. ErrImageNotFound when
// it is neither local nor pullable.
func (c *Client) EnsureImage(ctx context.Context, ref string) error {
	if _, err := c.api.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return wrap(err, "inspect image %s", ref)
	}
	resp, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull image %s: %w: %w", ref, ErrImageNotFound, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pull image %s: %w: %w", ref, ErrImageNotFound, err)
	}
	return nil
}

// EnsureNetwork creates the bridge network name unless it exists. Networks the agent creates are
// labelled constellation.managed=true; an existing network of the same name is used as is.
func (c *Client) EnsureNetwork(ctx context.Context, name string) error {
	if _, err := c.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return wrap(err, "inspect network %s", name)
	}
	_, err := c.api.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge", Labels: map[string]string{"constellation.managed": "true"},
	})
	if cerrdefs.IsConflict(err) || (err != nil && strings.Contains(err.Error(), "already exists")) {
		return nil
	}
	return wrap(err, "create network %s", name)
}

// RemoveNetwork removes a network; a network already gone is not an error.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	_, err := c.api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap(err, "remove network %s", name)
}

// EnsureVolume creates the named volume unless it exists.
func (c *Client) EnsureVolume(ctx context.Context, name string) error {
	if _, err := c.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return wrap(err, "inspect volume %s", name)
	}
	_, err := c.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: map[string]string{"constellation.managed": "true"}})
	return wrap(err, "create volume %s", name)
}

// RemoveVolume removes a volume; a volume already gone is not an error.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	_, err := c.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap(err, "remove volume %s", name)
}

// LogTail returns the last n lines of a container's stdout and stderr written since since (the
// zero time: all), interleaved by line.
func (c *Client) LogTail(ctx context.Context, id string, since time.Time, n int) (string, error) {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)}
	if !since.IsZero() {
		opts.Since = since.Format(time.RFC3339Nano)
	}
	rc, err := c.api.ContainerLogs(ctx, id, opts)
	if err != nil {
		return "", wrap(err, "logs of container %s", short(id))
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 64<<10)); err != nil {
		return "", wrap(err, "logs of container %s", short(id))
	}
	var lines []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}

// Events streams container events for containers carrying all of labels until ctx ends or the
// stream fails; the error channel then receives one error (io.EOF when the daemon closed it).
func (c *Client) Events(ctx context.Context, labels map[string]string) (<-chan Event, <-chan error) {
	f := client.Filters{}
	f.Add("type", string(events.ContainerEventType))
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	res := c.api.Events(ctx, client.EventsListOptions{Filters: f})
	out := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-res.Messages:
				ev := Event{ContainerID: m.Actor.ID, Action: string(m.Action), Labels: m.Actor.Attributes, Time: time.Unix(0, m.TimeNano)}
				select {
				case out <- ev:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case err := <-res.Err:
				if err == nil {
					err = io.EOF
				}
				errc <- wrap(err, "docker events")
				return
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	return out, errc
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

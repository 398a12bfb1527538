package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
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

// Event is a container event from the daemon.
type Event struct {
	ContainerID string
	// Action is Docker's: create, start, die, stop, kill, destroy, health_status: healthy, ...
	Action string
	Labels map[string]string
	Time   time.Time
}

// Client talks to one Docker engine. Every call but the event stream is bounded by a deadline
// (Timeouts): a daemon that accepts connections but does not answer (socket-activated and still
// starting, wedged on a storage driver, ...) must not hold a reconcile worker forever. A call
// that runs out of time fails with ErrTimeout, which also matches ErrUnavailable: callers treat
// an engine that does not answer like one that is gone (keep state, retry later), never as a
// verdict on the replica.
type Client struct {
	api *client.Client
	t   Timeouts
	log *slog.Logger
	now func() time.Time
}

// Timeouts bound the calls to the engine. Zero fields take the defaults given.
type Timeouts struct {
	// Call bounds a short call: ping, list (with its inspects), inspect, start, remove, logs,
	// image/network/volume inspect and create. Default 30s.
	Call time.Duration
	// StopGrace is added to a stop's own timeout, after which the engine kills the container
	// and answers. Default 5s.
	StopGrace time.Duration
	// Create bounds a container create with its network attachments (the engine may copy up
	// image layers or wait on a storage driver). Default 2m.
	Create time.Duration
	// Pull bounds an image pull. Default 10m.
	Pull time.Duration
	// Slow: any call taking at least this long is logged at Warn with its name, object and
	// duration. Default 5s.
	Slow time.Duration
}

// DefaultTimeouts returns the defaults documented on Timeouts.
func DefaultTimeouts() Timeouts {
	return Timeouts{Call: 30 * time.Second, StopGrace: 5 * time.Second, Create: 2 * time.Minute, Pull: 10 * time.Minute, Slow: 5 * time.Second}
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	if t.Call <= 0 {
		t.Call = d.Call
	}
	if t.StopGrace <= 0 {
		t.StopGrace = d.StopGrace
	}
	if t.Create <= 0 {
		t.Create = d.Create
	}
	if t.Pull <= 0 {
		t.Pull = d.Pull
	}
	if t.Slow <= 0 {
		t.Slow = d.Slow
	}
	return t
}

// Options configure a Client. Zero values take the defaults given.
type Options struct {
	// Host is the engine's address. Default: DOCKER_HOST, else the local socket.
	Host string
	// Timeouts bound each call. Default DefaultTimeouts().
	Timeouts Timeouts
	// Logger receives slow-call warnings. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock slow calls are measured with. Default time.Now.
	Now func() time.Time
	// ClientOpts are passed to the moby client after the defaults (tests point it at a fake
	// engine with client.WithHTTPClient).
	ClientOpts []client.Opt
}

// New connects to host ("" means DOCKER_HOST, else the local socket), negotiating the API
// version on the first request, with the default timeouts.
func New(host string) (*Client, error) { return NewWithOptions(Options{Host: host}) }

// NewWithOptions is New with timeouts, a logger and extra client options.
func NewWithOptions(o Options) (*Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if o.Host != "" {
		opts = append(opts, client.WithHost(o.Host))
	}
	opts = append(opts, o.ClientOpts...)
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{api: c, t: o.Timeouts.withDefaults(), log: o.Logger.With("component", "docker"), now: o.Now}, nil
}

// ErrTimeout is returned (wrapped, together with ErrUnavailable) when the engine did not answer
// a call within its deadline.
var ErrTimeout = errors.New("docker: no answer within the call's deadline")

// callTimeout is the cancellation cause of a call's own deadline, so that it can be told apart
// from the caller's context ending.
type callTimeout struct{ d time.Duration }

func (e *callTimeout) Error() string { return fmt.Sprintf("docker call deadline (%s) exceeded", e.d) }

// call runs fn under a deadline of d, logs it when slow, and turns its own deadline running out
// into ErrTimeout (and ErrUnavailable). op and obj name the call in logs ("list containers",
// "web-0-1a2b3c4d").
func (c *Client) call(ctx context.Context, op, obj string, d time.Duration, fn func(context.Context) error) error {
	cause := &callTimeout{d: d}
	cctx, cancel := context.WithTimeoutCause(ctx, d, cause)
	defer cancel()
	start := c.now()
	err := fn(cctx)
	took := c.now().Sub(start)
	if took >= c.t.Slow {
		c.log.Warn("slow docker call", "call", op, "object", obj, "duration", took.Round(time.Millisecond), "err", err)
	}
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(cctx), cause) {
		return fmt.Errorf("%s %s: %w after %s: %w: %w", op, obj, ErrTimeout, d, ErrUnavailable, err)
	}
	return err
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// APIVersion returns the negotiated API version (after the first request).
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// Ping checks the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, "ping", "", c.t.Call, func(ctx context.Context) error {
		_, err := c.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		return wrap(err, "ping")
	})
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

// HasImage reports whether ref is present locally (a short, bounded inspect).
func (c *Client) HasImage(ctx context.Context, ref string) (bool, error) {
	var ok bool
	err := c.call(ctx, "inspect image", ref, c.t.Call, func(ctx context.Context) error {
		_, err := c.api.ImageInspect(ctx, ref)
		switch {
		case err == nil:
			ok = true
		case cerrdefs.IsNotFound(err):
		default:
			return wrap(err, "inspect image %s", ref)
		}
		return nil
	})
	return ok, err
}

// PullProgress is how far a pull has come, summed over its layers from the engine's JSON
// progress stream.
type PullProgress struct {
	// Layers seen so far, and how many of them are complete (downloaded and extracted, or
	// already present).
	Layers, LayersDone int
	// BytesDone and BytesTotal of the layers' downloads whose size is known.
	BytesDone, BytesTotal int64
}

// String is "2/5 layers, 12.3/40.1 MB".
func (p PullProgress) String() string {
	s := fmt.Sprintf("%d/%d layers", p.LayersDone, p.Layers)
	if p.BytesTotal > 0 {
		s += fmt.Sprintf(", %.1f/%.1f MB", float64(p.BytesDone)/1e6, float64(p.BytesTotal)/1e6)
	}
	return s
}

// PullImage pulls ref, bounded by Timeouts.Pull, calling progress (when not nil) after every
// progress message. ErrImageNotFound when the engine cannot get it; ErrTimeout (and
// ErrUnavailable) when it ran out of time.
func (c *Client) PullImage(ctx context.Context, ref string, progress func(PullProgress)) error {
	return c.call(ctx, "pull image", ref, c.t.Pull, func(ctx context.Context) error {
		resp, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{})
		if err != nil {
			if client.IsErrConnectionFailed(err) || ctx.Err() != nil {
				return wrap(err, "pull image %s", ref)
			}
			return fmt.Errorf("pull image %s: %w: %w", ref, ErrImageNotFound, err)
		}
		defer resp.Close()
		var t pullTracker
		for m, err := range resp.JSONMessages(ctx) {
			if err != nil {
				if ctx.Err() != nil {
					return wrap(err, "pull image %s", ref)
				}
				return fmt.Errorf("pull image %s: %w: %w", ref, ErrImageNotFound, err)
			}
			if m.Error != nil {
				return fmt.Errorf("pull image %s: %w: %s", ref, ErrImageNotFound, m.Error.Message)
			}
			if t.add(m) && progress != nil {
				progress(t.progress())
			}
		}
		return nil
	})
}

// pullTracker folds the engine's per-layer progress messages into one PullProgress.
type pullTracker struct {
	order  []string
	layers map[string]*layerProgress
}

type layerProgress struct {
	done           bool
	current, total int64
}

// add records one message and reports whether it was about a layer.
func (t *pullTracker) add(m jsonstream.Message) bool {
	if m.ID == "" || strings.HasPrefix(m.Status, "Pulling from") {
		return false
	}
	if t.layers == nil {
		t.layers = map[string]*layerProgress{}
	}
	l, ok := t.layers[m.ID]
	if !ok {
		l = &layerProgress{}
		t.layers[m.ID] = l
		t.order = append(t.order, m.ID)
	}
	switch {
	case m.Status == "Pull complete" || m.Status == "Already exists":
		l.done = true
		if l.total > 0 {
			l.current = l.total
		}
	case m.Status == "Download complete":
		if l.total > 0 {
			l.current = l.total
		}
	case strings.HasPrefix(m.Status, "Downloading") && m.Progress != nil:
		l.current, l.total = m.Progress.Current, m.Progress.Total
	}
	return true
}

func (t *pullTracker) progress() PullProgress {
	var p PullProgress
	for _, id := range t.order {
		l := t.layers[id]
		p.Layers++
		if l.done {
			p.LayersDone++
		}
		p.BytesDone += l.current
		p.BytesTotal += l.total
	}
	return p
}

// EnsureNetwork creates the bridge network name unless it exists. Networks the agent creates are
// labelled constellation.managed=true; an existing network of the same name is used as is.
func (c *Client) EnsureNetwork(ctx context.Context, name string) error {
	return c.call(ctx, "ensure network", name, c.t.Call, func(ctx context.Context) error { return c.ensureNetwork(ctx, name) })
}

func (c *Client) ensureNetwork(ctx context.Context, name string) error {
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
	return c.call(ctx, "remove network", name, c.t.Call, func(ctx context.Context) error {
		_, err := c.api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove network %s", name)
	})
}

// EnsureVolume creates the named volume unless it exists.
func (c *Client) EnsureVolume(ctx context.Context, name string) error {
	return c.call(ctx, "ensure volume", name, c.t.Call, func(ctx context.Context) error { return c.ensureVolume(ctx, name) })
}

func (c *Client) ensureVolume(ctx context.Context, name string) error {
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
	return c.call(ctx, "remove volume", name, c.t.Call, func(ctx context.Context) error {
		_, err := c.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		return wrap(err, "remove volume %s", name)
	})
}

// LogTail returns the last n lines of a container's stdout and stderr written since since (the
// zero time: all), interleaved by line.
func (c *Client) LogTail(ctx context.Context, id string, since time.Time, n int) (string, error) {
	var out string
	err := c.call(ctx, "logs of container", short(id), c.t.Call, func(ctx context.Context) error {
		var err error
		out, err = c.logTail(ctx, id, since, n)
		return err
	})
	return out, err
}

func (c *Client) logTail(ctx context.Context, id string, since time.Time, n int) (string, error) {
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

// ExecRun runs cmd in the running container id (docker exec, no tty) and returns its exit code
// and combined output (the last 4 KiB), within timeout.
func (c *Client) ExecRun(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, string, error) {
	code, out := -1, ""
	err := c.call(ctx, "exec", short(id), timeout, func(ctx context.Context) error {
		cr, err := c.api.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
		if err != nil {
			return wrap(err, "exec in container %s", short(id))
		}
		at, err := c.api.ExecAttach(ctx, cr.ID, client.ExecAttachOptions{})
		if err != nil {
			return wrap(err, "exec in container %s", short(id))
		}
		defer at.Close()
		var buf bytes.Buffer
		_, _ = stdcopy.StdCopy(&buf, &buf, io.LimitReader(at.Reader, 1<<20))
		out = buf.String()
		if len(out) > 4096 {
			out = out[len(out)-4096:]
		}
		ins, err := c.api.ExecInspect(ctx, cr.ID, client.ExecInspectOptions{})
		if err != nil {
			return wrap(err, "exec in container %s", short(id))
		}
		code = ins.ExitCode
		return nil
	})
	return code, out, err
}

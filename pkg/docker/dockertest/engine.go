// Package dockertest is an in-memory Docker engine for tests: a docker.Engine with
// containers (create, start, stop, remove, list by labels), their events, images present or
// pullable, networks and volumes, faithful to what *docker.Client reports. No dockerd: a
// whole agent runs on it in `go test` (pkg/agent, docs/testing.md).
//
// What it models, as the engine does it:
//   - a container is created "created", runs once started, and shows its published ports and
//     network addresses only while it runs; an empty or "0" host port gets an ephemeral one;
//   - creating from an image that is not present fails with docker.ErrImageNotFound, a taken
//     name with docker.ErrNameConflict, an unknown network with docker.ErrNotFound; a start
//     whose fixed host port another running container holds fails with docker.ErrPortConflict;
//   - Remove is forced (a running container goes too) and a container already gone is no error;
//   - no restart policy: a container that exits (Kill) stays exited, as the agent creates them;
//   - events (create, start, die, stop, destroy) reach every subscriber whose labels match;
//   - SetDown makes every call fail with docker.ErrUnavailable and ends the event streams.
//
// What it does not: exec, logs beyond LogTail, archives, stats, image save and load. A
// component that needs those declares a wider interface, which Engine does not implement.
package dockertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/docker"
)

// Options configures an Engine; the zero value is a usable one.
type Options struct {
	// Now is the engine's clock (StartedAt, FinishedAt, event times). Default time.Now.
	Now func() time.Time
	// Images are present from the start.
	Images []string
	// Pullable reports whether a pull of ref succeeds (then the image is present). Default:
	// every image is pullable.
	Pullable func(ref string) bool
	// FirstHostPort is the first ephemeral host port handed out. Engines of one test that
	// advertise the same address should start far apart. Default 32768.
	FirstHostPort int
	// Subnet is the first three octets of container addresses on non-host networks. Default
	// "172.18.0".
	Subnet string
}

// Engine is an in-memory docker.Engine; it also has CopyFiles (the Job runner's), Ping and
// APIVersion (the agent's diagnostics). Safe for concurrent use.
type Engine struct {
	opts Options

	mu       sync.Mutex
	down     bool
	seq      int
	nextPort int
	nextIP   int
	ctrs     map[string]*ctr
	images   map[string]bool
	networks map[string]bool
	volumes  map[string]bool
	pulls    []string
	subs     map[*sub]struct{}
}

type ctr struct {
	c        docker.Container
	bindings map[string]docker.HostPort // "8080/tcp" → the host port while it runs
	ips      map[string]string          // network → address while it runs
	files    []docker.File
}

var (
	_ docker.Engine = (*Engine)(nil)
	_ interface {
		CopyFiles(ctx context.Context, id string, files []docker.File) error
	} = (*Engine)(nil)
)

// New returns an empty engine: no containers, the networks Docker always has (bridge, host,
// none), the images of opts.
func New(opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FirstHostPort == 0 {
		opts.FirstHostPort = 32768
	}
	if opts.Subnet == "" {
		opts.Subnet = "172.18.0"
	}
	e := &Engine{
		opts: opts, nextPort: opts.FirstHostPort, nextIP: 2,
		ctrs:     map[string]*ctr{},
		images:   map[string]bool{},
		networks: map[string]bool{"bridge": true, "host": true, "none": true},
		volumes:  map[string]bool{},
		subs:     map[*sub]struct{}{},
	}
	for _, ref := range opts.Images {
		e.images[ref] = true
	}
	return e
}

// errLocked is the error of every call while the engine is down; e.mu is held.
func (e *Engine) errLocked(op string) error {
	if e.down {
		return fmt.Errorf("%s: %w", op, docker.ErrUnavailable)
	}
	return nil
}

// List returns the containers (running or not) carrying all of labels, by ID.
func (e *Engine) List(_ context.Context, labels map[string]string) ([]docker.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("list containers"); err != nil {
		return nil, err
	}
	return e.listLocked(labels), nil
}

func (e *Engine) listLocked(labels map[string]string) []docker.Container {
	var out []docker.Container
	for _, c := range e.ctrs {
		if matches(c.c.Labels, labels) {
			out = append(out, c.view())
		}
	}
	slices.SortFunc(out, func(a, b docker.Container) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// view is the container as the engine reports it: ports and addresses only while it runs.
func (c *ctr) view() docker.Container {
	v := c.c
	v.Labels = maps.Clone(c.c.Labels)
	v.Ports, v.Networks = nil, nil
	if len(c.ips) > 0 {
		v.Networks = map[string]string{}
		for n, ip := range c.ips {
			if c.c.Running {
				v.Networks[n] = ip
			} else {
				v.Networks[n] = ""
			}
		}
	}
	if c.c.Running && len(c.bindings) > 0 {
		v.Ports = maps.Clone(c.bindings)
	}
	return v
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Create creates a container from cfg, as ContainerCreate does.
func (e *Engine) Create(_ context.Context, cfg docker.CreateConfig) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("create container " + cfg.Name); err != nil {
		return "", err
	}
	if cfg.Config == nil {
		return "", fmt.Errorf("create container %s: no config", cfg.Name)
	}
	for _, c := range e.ctrs {
		if cfg.Name != "" && c.c.Name == cfg.Name {
			return "", fmt.Errorf("create container %s: %w", cfg.Name, docker.ErrNameConflict)
		}
	}
	if !e.images[cfg.Config.Image] {
		return "", fmt.Errorf("create container %s: %w: no such image %s", cfg.Name, docker.ErrImageNotFound, cfg.Config.Image)
	}
	e.seq++
	id := fmt.Sprintf("%064x", e.seq)
	c := &ctr{c: docker.Container{ID: id, Name: cfg.Name, Image: cfg.Config.Image, Labels: maps.Clone(cfg.Config.Labels), State: "created"}}
	mode := "bridge"
	if hc := cfg.HostConfig; hc != nil {
		if hc.NetworkMode != "" {
			mode = string(hc.NetworkMode)
		}
		for _, m := range hc.Mounts {
			if m.Type == "volume" && m.Source != "" {
				e.volumes[m.Source] = true // named volumes are made on first use
			}
		}
	}
	c.c.NetworkMode = mode
	var nets []string
	switch {
	case mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:"):
		if mode == "host" {
			c.ips = map[string]string{"host": ""}
		}
	default:
		nets = append(nets, mode)
		if cfg.Networking != nil {
			for n := range cfg.Networking.EndpointsConfig {
				if n != mode {
					nets = append(nets, n)
				}
			}
		}
		for n := range cfg.ExtraNetworks {
			nets = append(nets, n)
		}
	}
	for _, n := range nets {
		if !e.networks[n] {
			return "", fmt.Errorf("create container %s: %w: network %s", cfg.Name, docker.ErrNotFound, n)
		}
	}
	for _, n := range nets {
		if c.ips == nil {
			c.ips = map[string]string{}
		}
		c.ips[n] = fmt.Sprintf("%s.%d", e.opts.Subnet, e.nextIP)
		e.nextIP++
	}
	if hc := cfg.HostConfig; hc != nil && len(hc.PortBindings) > 0 && len(nets) > 0 {
		c.bindings = map[string]docker.HostPort{}
		for p, bs := range hc.PortBindings {
			if len(bs) == 0 {
				continue
			}
			b := bs[0]
			hp := b.HostPort
			if hp == "" || hp == "0" {
				hp = strconv.Itoa(e.nextPort)
				e.nextPort++
			}
			ip := "0.0.0.0"
			if b.HostIP.IsValid() {
				ip = b.HostIP.String()
			}
			c.bindings[p.String()] = docker.HostPort{IP: ip, Port: hp}
		}
	}
	e.ctrs[id] = c
	e.emitLocked(c, "create")
	return id, nil
}

// Start runs a created or exited container.
func (e *Engine) Start(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("start container " + short(id)); err != nil {
		return err
	}
	c, ok := e.ctrs[id]
	if !ok {
		return fmt.Errorf("start container %s: %w", short(id), docker.ErrNotFound)
	}
	if c.c.Running {
		return nil
	}
	for p, b := range c.bindings {
		for _, o := range e.ctrs {
			if o != c && o.c.Running && o.bindings[p].Port == b.Port {
				return fmt.Errorf("start container %s: %w: %s", short(id), docker.ErrPortConflict, b.Port)
			}
		}
	}
	e.seq++
	c.c.Running, c.c.State, c.c.ExitCode, c.c.StartedAt, c.c.Pid = true, "running", 0, e.opts.Now(), 1000+e.seq
	e.emitLocked(c, "start")
	return nil
}

// Stop stops a running container (exit code 0, as a process that honours SIGTERM).
func (e *Engine) Stop(_ context.Context, id string, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("stop container " + short(id)); err != nil {
		return err
	}
	c, ok := e.ctrs[id]
	if !ok {
		return fmt.Errorf("stop container %s: %w", short(id), docker.ErrNotFound)
	}
	if c.c.Running {
		e.exitLocked(c, 0)
		e.emitLocked(c, "stop")
	}
	return nil
}

// exitLocked ends c's process with code; e.mu is held.
func (e *Engine) exitLocked(c *ctr, code int) {
	c.c.Running, c.c.State, c.c.ExitCode, c.c.FinishedAt, c.c.Pid = false, "exited", code, e.opts.Now(), 0
	e.emitLocked(c, "die")
}

// Remove force-removes a container; one already gone is not an error.
func (e *Engine) Remove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("remove container " + short(id)); err != nil {
		return err
	}
	c, ok := e.ctrs[id]
	if !ok {
		return nil
	}
	if c.c.Running {
		e.exitLocked(c, 137)
	}
	delete(e.ctrs, id)
	e.emitLocked(c, "destroy")
	return nil
}

// HasImage reports whether ref is present.
func (e *Engine) HasImage(_ context.Context, ref string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("inspect image " + ref); err != nil {
		return false, err
	}
	return e.images[ref], nil
}

// PullImage makes ref present when Options.Pullable allows it, else fails with
// docker.ErrImageNotFound.
func (e *Engine) PullImage(_ context.Context, ref string, progress func(docker.PullProgress)) error {
	e.mu.Lock()
	if err := e.errLocked("pull image " + ref); err != nil {
		e.mu.Unlock()
		return err
	}
	e.pulls = append(e.pulls, ref)
	if e.opts.Pullable != nil && !e.opts.Pullable(ref) {
		e.mu.Unlock()
		return fmt.Errorf("pull image %s: %w: manifest unknown", ref, docker.ErrImageNotFound)
	}
	e.images[ref] = true
	e.mu.Unlock()
	if progress != nil {
		progress(docker.PullProgress{Layers: 1, LayersDone: 1})
	}
	return nil
}

// EnsureNetwork creates the network name if it does not exist.
func (e *Engine) EnsureNetwork(_ context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("create network " + name); err != nil {
		return err
	}
	e.networks[name] = true
	return nil
}

// EnsureVolume creates the volume name if it does not exist.
func (e *Engine) EnsureVolume(_ context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("create volume " + name); err != nil {
		return err
	}
	e.volumes[name] = true
	return nil
}

// LogTail returns "" for an existing container: the fake's processes print nothing.
func (e *Engine) LogTail(_ context.Context, id string, _ time.Time, _ int) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("logs of container " + short(id)); err != nil {
		return "", err
	}
	if _, ok := e.ctrs[id]; !ok {
		return "", fmt.Errorf("logs of container %s: %w", short(id), docker.ErrNotFound)
	}
	return "", nil
}

// CopyFiles records files in the created container id (the Job runner's spec.files).
func (e *Engine) CopyFiles(_ context.Context, id string, files []docker.File) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.errLocked("copy files to container " + short(id)); err != nil {
		return err
	}
	c, ok := e.ctrs[id]
	if !ok {
		return fmt.Errorf("copy files to container %s: %w", short(id), docker.ErrNotFound)
	}
	c.files = append(c.files, files...)
	return nil
}

// Ping answers unless the engine is down.
func (e *Engine) Ping(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.errLocked("ping")
}

// APIVersion is the API version the fake speaks.
func (e *Engine) APIVersion() string { return "1.41-fake" }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// The Client: construction, per-call timeouts and error mapping, shared by every engine call.

package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
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

// New connects to o.Host ("" means DOCKER_HOST, else the local socket), negotiating the API
// version on the first request; the zero Options take the default timeouts and logger.
func New(o Options) (*Client, error) {
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

// Exec: an interactive session (stdin, resize, exit code) and ExecRun, a command run to its end.

package docker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// ExecConfig is a command to run in a container.
type ExecConfig struct {
	Cmd []string
	// TTY gives the command a terminal (stdout and stderr are then one raw stream).
	TTY bool
	// Stdin attaches the command's standard input.
	Stdin bool
	// Height and Width are the terminal's initial size (TTY only; zero: Docker's default).
	Height, Width uint
	// Env and WorkingDir and User as docker exec's.
	Env        []string
	WorkingDir string
	User       string
}

// Exec is a running exec session.
type Exec struct {
	c    *Client
	id   string
	tty  bool
	conn client.HijackedResponse
}

// Exec starts cmd in container id, attached. The caller reads its output with Output, writes
// its input with Write and CloseStdin, and reads its exit status with Wait; Close releases it.
func (c *Client) Exec(ctx context.Context, id string, cfg ExecConfig) (*Exec, error) {
	if len(cfg.Cmd) == 0 {
		return nil, errors.New("exec: no command")
	}
	var e *Exec
	err := c.call(ctx, "exec in container", short(id), c.t.Call, func(ctx context.Context) error {
		size := client.ConsoleSize{}
		if cfg.TTY {
			size = client.ConsoleSize{Height: cfg.Height, Width: cfg.Width}
		}
		res, err := c.api.ExecCreate(ctx, id, client.ExecCreateOptions{
			TTY: cfg.TTY, ConsoleSize: size, AttachStdin: cfg.Stdin, AttachStdout: true, AttachStderr: true,
			Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, Cmd: cfg.Cmd,
		})
		if err != nil {
			return wrap(err, "exec in container %s", short(id))
		}
		// The hijacked connection outlives this call: attach with the caller's context.
		att, err := c.api.ExecAttach(context.WithoutCancel(ctx), res.ID, client.ExecAttachOptions{TTY: cfg.TTY, ConsoleSize: size})
		if err != nil {
			return wrap(err, "exec in container %s", short(id))
		}
		e = &Exec{c: c, id: res.ID, tty: cfg.TTY, conn: att.HijackedResponse}
		if cfg.TTY && cfg.Height > 0 && cfg.Width > 0 {
			// Engines before API 1.42 ignore the size given at create: set it once started,
			// as docker exec does.
			if _, err := c.api.ExecResize(ctx, res.ID, client.ExecResizeOptions{Height: cfg.Height, Width: cfg.Width}); err != nil {
				c.log.Debug("initial exec terminal size not set", "exec", short(res.ID), "err", err)
			}
		}
		return nil
	})
	return e, err
}

// Output copies the command's output to stdout and stderr (one raw stream with a TTY, written
// to stdout) until the command ends.
func (e *Exec) Output(stdout, stderr io.Writer) error {
	if e.tty {
		_, err := io.Copy(stdout, e.conn.Reader)
		return ignoreClosed(err)
	}
	fr := NewFrameReader(e.conn.Reader)
	for {
		stream, b, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return ignoreClosed(err)
		}
		w := stdout
		if stream == StreamStderr {
			w = stderr
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
}

func ignoreClosed(err error) error {
	if err != nil && (errors.Is(err, io.EOF) || strings.Contains(err.Error(), "use of closed network connection")) {
		return nil
	}
	return err
}

// Write writes to the command's standard input.
func (e *Exec) Write(p []byte) (int, error) { return e.conn.Conn.Write(p) }

// CloseStdin closes the command's standard input (it reads EOF).
func (e *Exec) CloseStdin() error { return e.conn.CloseWrite() }

// Resize sets the terminal's size (TTY only).
func (e *Exec) Resize(ctx context.Context, height, width uint) error {
	return e.c.call(ctx, "resize exec", short(e.id), e.c.t.Call, func(ctx context.Context) error {
		_, err := e.c.api.ExecResize(ctx, e.id, client.ExecResizeOptions{Height: height, Width: width})
		return wrap(err, "resize exec %s", short(e.id))
	})
}

// Wait returns the command's exit code once it has ended (call it after Output returned).
func (e *Exec) Wait(ctx context.Context) (int, error) {
	for {
		var res client.ExecInspectResult
		err := e.c.call(ctx, "inspect exec", short(e.id), e.c.t.Call, func(ctx context.Context) error {
			var err error
			res, err = e.c.api.ExecInspect(ctx, e.id, client.ExecInspectOptions{})
			return wrap(err, "inspect exec %s", short(e.id))
		})
		if err != nil {
			return -1, err
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		// The output ends a moment before the engine records the exit.
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close releases the session's connection.
func (e *Exec) Close() { e.conn.Close() }

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

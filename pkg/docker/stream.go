package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// The streams of a container, as Docker numbers them in its multiplexed format.
const (
	StreamStdin  = 0
	StreamStdout = 1
	StreamStderr = 2
)

// LogLine is one line a container wrote.
type LogLine struct {
	// Stream is StreamStdout or StreamStderr.
	Stream int
	// Time is Docker's timestamp of the line (the time the engine read it).
	Time time.Time
	// Text is the line without its newline.
	Text string
}

// LogOptions select the lines of a container's log.
type LogOptions struct {
	// Follow keeps the stream open for lines written later.
	Follow bool
	// Since: only lines written at or after it (zero: all).
	Since time.Time
	// Tail: only the last Tail lines of what is already written (negative: all).
	Tail int
}

// maxLine bounds one line; longer lines are cut into pieces of this size.
const maxLine = 64 << 10

// Logs streams the lines of container id's stdout and stderr to fn, in the order the engine
// sends them, until the log ends (without Follow: the end of what is written; with it: the
// container stops) or ctx ends or fn fails. The engine's multiplexed stream (or a TTY
// container's raw one) is demultiplexed here; lines carry Docker's timestamps.
func (c *Client) Logs(ctx context.Context, id string, opts LogOptions, fn func(LogLine) error) error {
	var ct container.InspectResponse
	err := c.call(ctx, "inspect container", short(id), c.t.Call, func(ctx context.Context) error {
		res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		ct = res.Container
		return wrap(err, "inspect container %s", short(id))
	})
	if err != nil {
		return err
	}
	tail := "all"
	if opts.Tail >= 0 {
		tail = strconv.Itoa(opts.Tail)
	}
	lo := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: opts.Follow, Tail: tail}
	if !opts.Since.IsZero() {
		lo.Since = strconv.FormatFloat(float64(opts.Since.UnixNano())/1e9, 'f', 9, 64)
	}
	var rc io.ReadCloser
	// Only opening the stream is bounded: following it lasts as long as the caller wants.
	err = c.call(ctx, "logs of container", short(id), c.t.Call, func(cctx context.Context) error {
		var err error
		rc, err = c.api.ContainerLogs(ctx, id, lo)
		return wrap(err, "logs of container %s", short(id))
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	tty := ct.Config != nil && ct.Config.Tty
	err = DemuxLogs(rc, tty, fn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// DemuxLogs reads a Docker log stream with timestamps (multiplexed, or raw when tty) and calls
// fn with each line. A line split across frames is joined; a line longer than 64 KiB is cut.
func DemuxLogs(r io.Reader, tty bool, fn func(LogLine) error) error {
	var partial [3][]byte
	emit := func(stream int, b []byte) error {
		ts, text, ok := bytes.Cut(b, []byte{' '})
		l := LogLine{Stream: stream, Text: string(text)}
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); ok && err == nil {
			l.Time = t
		} else {
			l.Text = string(b)
		}
		return fn(l)
	}
	feed := func(stream int, b []byte) error {
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				partial[stream] = append(partial[stream], b...)
				if len(partial[stream]) >= maxLine {
					line := partial[stream]
					partial[stream] = nil
					if err := emit(stream, line); err != nil {
						return err
					}
				}
				return nil
			}
			line := append(partial[stream], b[:i]...)
			partial[stream] = nil
			if err := emit(stream, bytes.TrimSuffix(line, []byte{'\r'})); err != nil {
				return err
			}
			b = b[i+1:]
		}
		return nil
	}
	flush := func() error {
		for s := range partial {
			if len(partial[s]) > 0 {
				if err := emit(s, partial[s]); err != nil {
					return err
				}
				partial[s] = nil
			}
		}
		return nil
	}
	if tty {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if ferr := feed(StreamStdout, buf[:n]); ferr != nil {
					return ferr
				}
			}
			if errors.Is(err, io.EOF) {
				return flush()
			}
			if err != nil {
				return err
			}
		}
	}
	fr := NewFrameReader(r)
	for {
		stream, b, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return err
		}
		if stream != StreamStdout && stream != StreamStderr {
			continue // stdin echo or the engine's system error stream: not log lines
		}
		if err := feed(stream, b); err != nil {
			return err
		}
	}
}

// FrameReader reads Docker's multiplexed stream: frames of an 8-byte header (stream, three
// zero bytes, big-endian uint32 length) and the payload.
type FrameReader struct {
	r   *bufio.Reader
	buf []byte
}

// MaxFrame bounds a frame's payload; a larger length is a corrupt stream.
const MaxFrame = 16 << 20

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: bufio.NewReaderSize(r, 32<<10)} }

// Next returns the next frame's stream and payload (valid until the next call). io.EOF at a
// frame boundary is the end; io.ErrUnexpectedEOF inside a frame.
func (f *FrameReader) Next() (int, []byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("docker stream: truncated frame header: %w", err)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[4:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("docker stream: frame of %d bytes (stream %d): corrupt stream", n, h[0])
	}
	if cap(f.buf) < int(n) {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("docker stream: truncated frame: %w", err)
	}
	return int(h[0]), f.buf, nil
}

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

// Volume is a named volume on this engine.
type Volume struct {
	Name      string
	CreatedAt time.Time
	// Size in bytes; -1 when the engine cannot tell (a volume driver other than local).
	Size int64
	// RefCount is how many containers (running or not) mount it; -1 when unknown.
	RefCount int64
	Labels   map[string]string
}

// diskUsageMu serialises this process's disk-usage calls (see Volumes).
var diskUsageMu sync.Mutex

// Volumes returns the volumes of names that exist on this engine, with their sizes. Sizes come
// from the engine's disk-usage call, which walks every local volume: it takes a while on a
// large disk.
func (c *Client) Volumes(ctx context.Context, names []string) ([]Volume, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Volume
	// The engine runs one disk-usage walk at a time and refuses a second ("a disk usage
	// operation is already running"): one at a time from this process, and a refusal from
	// another client is waited out.
	diskUsageMu.Lock()
	defer diskUsageMu.Unlock()
	err := c.call(ctx, "volume sizes", strings.Join(names, ","), c.t.Create, func(ctx context.Context) error {
		var du client.DiskUsageResult
		var err error
		for attempt := 0; ; attempt++ {
			du, err = c.api.DiskUsage(ctx, client.DiskUsageOptions{Volumes: true, Verbose: true})
			if err == nil || !strings.Contains(err.Error(), "already running") || attempt >= 50 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err != nil {
			return wrap(err, "disk usage")
		}
		for _, v := range du.Volumes.Items {
			if !want[v.Name] {
				continue
			}
			vol := Volume{Name: v.Name, Size: -1, RefCount: -1, Labels: v.Labels}
			vol.CreatedAt, _ = time.Parse(time.RFC3339Nano, v.CreatedAt)
			if v.UsageData != nil {
				vol.Size, vol.RefCount = v.UsageData.Size, v.UsageData.RefCount
			}
			out = append(out, vol)
		}
		return nil
	})
	return out, err
}

// ContainersUsingVolume returns the containers (running or not) that mount volume name.
func (c *Client) ContainersUsingVolume(ctx context.Context, name string) ([]Container, error) {
	var out []Container
	err := c.call(ctx, "list containers", "volume="+name, c.t.Call, func(ctx context.Context) error {
		f := client.Filters{}
		f.Add("volume", name)
		res, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return wrap(err, "list containers using volume %s", name)
		}
		for _, s := range res.Items {
			ct, err := c.inspect(ctx, s.ID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, ct)
		}
		return nil
	})
	return out, err
}

// LabelVolumeHelper marks the short-lived containers that carry a volume's archive in and out.
// They are created, never started, and removed when the copy ends.
const LabelVolumeHelper = "constellation.volume-helper"

// volumeMountPoint is where a helper container mounts the volume.
const volumeMountPoint = "/constellation-volume"

// withVolumeHelper creates a stopped container from image with volume name mounted, runs fn
// with its ID, and removes it. A never-started container is enough for Docker's archive calls,
// and any image will do (its entrypoint never runs): callers pass the replica's own image,
// which its node already has.
func (c *Client) withVolumeHelper(ctx context.Context, name, image string, readOnly bool, fn func(id string) error) error {
	if image == "" {
		return fmt.Errorf("volume %s: no image to mount it in", name)
	}
	var id string
	err := c.call(ctx, "create volume helper", name, c.t.Create, func(ctx context.Context) error {
		if _, err := c.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err != nil {
			return wrap(err, "volume %s", name)
		}
		res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: image, Labels: map[string]string{LabelVolumeHelper: name},
				Entrypoint: []string{"/constellation-volume-helper-never-runs"}},
			HostConfig: &container.HostConfig{
				NetworkMode: "none",
				Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: volumeMountPoint, ReadOnly: readOnly}},
			},
		})
		if err != nil {
			return wrap(err, "create volume helper for %s", name)
		}
		id = res.ID
		return nil
	})
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.t.Call)
		defer cancel()
		if _, err := c.api.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: false}); err != nil && !cerrdefs.IsNotFound(err) {
			c.log.Warn("volume helper container not removed", "container", short(id), "volume", name, "err", err)
		}
	}()
	return fn(id)
}

// ExportVolume writes a tar archive of volume name's contents to w, with paths relative to
// the volume's root ("./" is the root, "./db/base" a file). image is any image the engine has.
func (c *Client) ExportVolume(ctx context.Context, name, image string, w io.Writer) error {
	return c.withVolumeHelper(ctx, name, image, true, func(id string) error {
		res, err := c.api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: volumeMountPoint + "/."})
		if err != nil {
			return wrap(err, "archive of volume %s", name)
		}
		defer res.Content.Close()
		return rebaseTar(res.Content, w, strings.TrimPrefix(volumeMountPoint, "/"), ".")
	})
}

// ImportVolume extracts the tar archive r (paths relative to the volume's root, as
// ExportVolume writes them) into volume name, over what it holds. image is any image the engine
// has.
func (c *Client) ImportVolume(ctx context.Context, name, image string, r io.Reader) error {
	return c.withVolumeHelper(ctx, name, image, false, func(id string) error {
		pr, pw := io.Pipe()
		checked := make(chan error, 1)
		go func() {
			err := checkTar(r, pw)
			checked <- err
			pw.CloseWithError(err)
		}()
		_, err := c.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: volumeMountPoint, Content: pr, CopyUIDGID: true})
		pr.CloseWithError(errors.New("copy ended"))
		if err == nil {
			return <-checked // the engine read the archive to its end: checkTar is done
		}
		// A refused archive is the reason, whatever the engine made of the cut stream; a
		// check still reading the caller's body is not waited for.
		select {
		case cerr := <-checked:
			if errors.Is(cerr, ErrBadArchive) {
				return cerr
			}
		default:
		}
		return wrap(err, "extract into volume %s", name)
	})
}

// rebaseTar copies the tar archive r to w with every name made relative to the volume's root:
// Docker names entries after the source's base name ("." or the mount point's), which this
// strips, so that an archive is the same whichever way it was taken. The root entry is dropped.
func rebaseTar(r io.Reader, w io.Writer, prefixes ...string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("read volume archive: %w", err)
		}
		name := relName(h.Name, prefixes...)
		if name == "" {
			continue
		}
		h.Name = name
		if h.Typeflag == tar.TypeLink {
			h.Linkname = relName(h.Linkname, prefixes...)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// relName is name cleaned and relative, without the first of prefixes it starts with; "" for
// the root itself.
func relName(name string, prefixes ...string) string {
	dir := strings.HasSuffix(name, "/")
	n := path.Clean("/" + name)[1:]
	for _, p := range prefixes {
		p = path.Clean("/" + p)[1:]
		if p == "" {
			continue
		}
		if n == p {
			return ""
		}
		if strings.HasPrefix(n, p+"/") {
			n = strings.TrimPrefix(n, p+"/")
			break
		}
	}
	if n == "" {
		return ""
	}
	if dir {
		n += "/"
	}
	return n
}

// ErrBadArchive is a restore archive the agent refuses: not a tar, or an entry that would land
// outside the volume.
var ErrBadArchive = errors.New("docker: bad volume archive")

// checkTar copies the tar archive r to w, refusing entries that would land outside the volume
// (absolute names are made relative; ".." escapes, device nodes and FIFOs are refused).
func checkTar(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return fmt.Errorf("%w: empty archive", ErrBadArchive)
			}
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadArchive, err)
		}
		if err := CheckArchiveEntry(h); err != nil {
			return err
		}
		h.Name = strings.TrimLeft(h.Name, "/")
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// CheckArchiveEntry refuses an entry of a restore archive that would write outside the volume
// or create a device.
func CheckArchiveEntry(h *tar.Header) error {
	escapes := func(p string) bool {
		c := path.Clean(strings.TrimLeft(p, "/"))
		return c == ".." || strings.HasPrefix(c, "../")
	}
	switch {
	case escapes(h.Name):
		return fmt.Errorf("%w: entry %q leaves the volume", ErrBadArchive, h.Name)
	case h.Typeflag == tar.TypeLink && escapes(h.Linkname):
		return fmt.Errorf("%w: hard link %q -> %q leaves the volume", ErrBadArchive, h.Name, h.Linkname)
	case h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock || h.Typeflag == tar.TypeFifo:
		return fmt.Errorf("%w: entry %q is a device or FIFO", ErrBadArchive, h.Name)
	}
	return nil
}

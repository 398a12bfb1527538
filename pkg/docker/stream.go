// Container output: Docker's multiplexed stream format (DemuxLogs, FrameReader) and Logs, which
// follows a container's output.

package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
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

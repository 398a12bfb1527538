package nodeapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The exec stream. After "101 Switching Protocols" (Upgrade: constellation-exec/1) both sides
// send frames: one byte of type, a big-endian uint32 payload length, the payload.
//
//	client → agent: stdin (bytes), resize (uint16 height, uint16 width), close-stdin (empty)
//	agent → client: stdout, stderr (bytes), exit (int32 exit code, big-endian), error (UTF-8)
//
// The agent sends exactly one exit or error frame, last, then closes the connection. A frame
// of an unknown type, a payload over MaxFramePayload or a resize/exit payload not 4 bytes long
// is a protocol error that ends the stream.
const (
	FrameStdin      byte = 0
	FrameStdout     byte = 1
	FrameStderr     byte = 2
	FrameResize     byte = 3
	FrameCloseStdin byte = 4
	FrameExit       byte = 5
	FrameError      byte = 6
)

// MaxFramePayload bounds a frame's payload.
const MaxFramePayload = 1 << 20

// Frame is one frame of the exec stream.
type Frame struct {
	Type    byte
	Payload []byte
}

// Resize returns a resize frame's size.
func (f Frame) Resize() (height, width uint16) {
	return binary.BigEndian.Uint16(f.Payload), binary.BigEndian.Uint16(f.Payload[2:])
}

// ExitCode returns an exit frame's code.
func (f Frame) ExitCode() int { return int(int32(binary.BigEndian.Uint32(f.Payload))) }

// ErrProtocol is a malformed exec stream.
var ErrProtocol = errors.New("nodeapi: exec stream protocol error")

// ReadFrame reads one frame. io.EOF at a frame boundary is the end of the stream.
func ReadFrame(r *bufio.Reader) (Frame, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, fmt.Errorf("%w: truncated frame header", ErrProtocol)
		}
		return Frame{}, err
	}
	t, n := h[0], binary.BigEndian.Uint32(h[1:])
	if t > FrameError {
		return Frame{}, fmt.Errorf("%w: unknown frame type %d", ErrProtocol, t)
	}
	if n > MaxFramePayload {
		return Frame{}, fmt.Errorf("%w: frame of %d bytes (at most %d)", ErrProtocol, n, MaxFramePayload)
	}
	switch t {
	case FrameResize, FrameExit:
		if n != 4 {
			return Frame{}, fmt.Errorf("%w: frame type %d with %d bytes, want 4", ErrProtocol, t, n)
		}
	case FrameCloseStdin:
		if n != 0 {
			return Frame{}, fmt.Errorf("%w: close-stdin frame with %d bytes", ErrProtocol, n)
		}
	}
	f := Frame{Type: t, Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // inside a frame: never the clean end
		}
		return Frame{}, fmt.Errorf("%w: truncated frame: %w", ErrProtocol, err)
	}
	return f, nil
}

// AppendFrame appends the encoding of a frame to b.
func AppendFrame(b []byte, t byte, payload []byte) []byte {
	b = append(b, t)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// FrameWriter writes frames; it is safe for concurrent use (the output and the exit code come
// from different goroutines).
type FrameWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewFrameWriter writes frames to w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// Write sends payload in frames of type t (split at MaxFramePayload).
func (fw *FrameWriter) Write(t byte, payload []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), MaxFramePayload)
		fw.buf = AppendFrame(fw.buf[:0], t, payload[:n])
		if _, err := fw.w.Write(fw.buf); err != nil {
			return err
		}
		payload = payload[n:]
	}
	return nil
}

// Resize sends a resize frame.
func (fw *FrameWriter) Resize(height, width uint16) error {
	var p [4]byte
	binary.BigEndian.PutUint16(p[:], height)
	binary.BigEndian.PutUint16(p[2:], width)
	return fw.Write(FrameResize, p[:])
}

// Exit sends an exit frame.
func (fw *FrameWriter) Exit(code int) error {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(int32(code)))
	return fw.Write(FrameExit, p[:])
}

// streamWriter is an io.Writer of frames of one type.
type streamWriter struct {
	fw *FrameWriter
	t  byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.fw.Write(s.t, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Stream returns an io.Writer that sends frames of type t.
func (fw *FrameWriter) Stream(t byte) io.Writer { return streamWriter{fw, t} }

// RemoteError is an error frame: the agent could not run or follow the command.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return e.Message }

// RunSession is the client side of an exec stream on conn: it copies stdin (nil: none) to the
// command, its output to stdout and stderr, sends the sizes resize delivers, and returns the
// command's exit code (an error frame is a *RemoteError). When stdin ends the command's input is
// closed. ctx ending closes conn.
func RunSession(ctx context.Context, conn io.ReadWriteCloser, stdin io.Reader, stdout, stderr io.Writer, resize <-chan [2]uint16) (int, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	fw := NewFrameWriter(conn)
	done := make(chan struct{})
	defer close(done)
	if stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if fw.Write(FrameStdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					_ = fw.Write(FrameCloseStdin, nil)
					return
				}
			}
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case sz, ok := <-resize:
					if !ok {
						return
					}
					if fw.Resize(sz[0], sz[1]) != nil {
						return
					}
				}
			}
		}()
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		f, err := ReadFrame(br)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return -1, errors.New("exec stream ended without an exit status")
			}
			return -1, err
		}
		switch f.Type {
		case FrameStdout:
			if _, err := stdout.Write(f.Payload); err != nil {
				return -1, err
			}
		case FrameStderr:
			if _, err := stderr.Write(f.Payload); err != nil {
				return -1, err
			}
		case FrameExit:
			return f.ExitCode(), nil
		case FrameError:
			return -1, &RemoteError{Message: string(f.Payload)}
		default:
			return -1, fmt.Errorf("%w: frame type %d from the agent", ErrProtocol, f.Type)
		}
	}
}

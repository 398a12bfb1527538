package nodeapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

func TestReadFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want Frame
		err  string
	}{
		{"stdout", AppendFrame(nil, FrameStdout, []byte("hi")), Frame{FrameStdout, []byte("hi")}, ""},
		{"empty stdin", AppendFrame(nil, FrameStdin, nil), Frame{FrameStdin, []byte{}}, ""},
		{"resize", AppendFrame(nil, FrameResize, []byte{0, 24, 0, 80}), Frame{FrameResize, []byte{0, 24, 0, 80}}, ""},
		{"short resize", AppendFrame(nil, FrameResize, []byte{0, 24}), Frame{}, "want 4"},
		{"exit too long", AppendFrame(nil, FrameExit, []byte{0, 0, 0, 0, 1}), Frame{}, "want 4"},
		{"close-stdin with bytes", AppendFrame(nil, FrameCloseStdin, []byte{1}), Frame{}, "close-stdin"},
		{"unknown type", AppendFrame(nil, 9, nil), Frame{}, "unknown frame type 9"},
		{"too large", []byte{FrameStdout, 0x7f, 0, 0, 0}, Frame{}, "at most"},
		{"truncated header", []byte{FrameStdout, 0}, Frame{}, "truncated frame header"},
		{"truncated payload", []byte{FrameStdout, 0, 0, 0, 5, 'a'}, Frame{}, "truncated frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrProtocol) {
					t.Fatalf("err %v, want %q (ErrProtocol)", err, tc.err)
				}
				return
			}
			if err != nil || f.Type != tc.want.Type || !bytes.Equal(f.Payload, tc.want.Payload) {
				t.Fatalf("got %+v %v, want %+v", f, err, tc.want)
			}
		})
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(nil))); !errors.Is(err, io.EOF) {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
}

func TestFrameWriterSplitsAndCodes(t *testing.T) {
	var b bytes.Buffer
	fw := NewFrameWriter(&b)
	big := bytes.Repeat([]byte("x"), MaxFramePayload+10)
	if err := fw.Write(FrameStdout, big); err != nil {
		t.Fatal(err)
	}
	fw.Exit(-2)
	fw.Resize(50, 132)
	r := bufio.NewReader(&b)
	var got []byte
	for range 2 {
		f, err := ReadFrame(r)
		if err != nil || f.Type != FrameStdout {
			t.Fatal(f.Type, err)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("split payload: %d bytes back of %d", len(got), len(big))
	}
	if f, err := ReadFrame(r); err != nil || f.ExitCode() != -2 {
		t.Fatalf("exit: %v %v", f, err)
	}
	if f, err := ReadFrame(r); err != nil {
		t.Fatal(err)
	} else if h, w := f.Resize(); h != 50 || w != 132 {
		t.Fatalf("resize %d %d", h, w)
	}
}

// TestRunSession plays the agent's side of the protocol against RunSession.
func TestRunSession(t *testing.T) {
	client, agent := net.Pipe()
	defer client.Close()
	go func() {
		defer agent.Close()
		r := bufio.NewReader(agent)
		fw := NewFrameWriter(agent)
		var in []byte
		for {
			f, err := ReadFrame(r)
			if err != nil {
				return
			}
			if f.Type == FrameStdin {
				in = append(in, f.Payload...)
			}
			if f.Type == FrameCloseStdin {
				fw.Write(FrameStdout, bytes.ToUpper(in))
				fw.Write(FrameStderr, []byte("done"))
				fw.Exit(7)
				return
			}
		}
	}()
	var out, errb bytes.Buffer
	code, err := RunSession(context.Background(), client, strings.NewReader("shout"), &out, &errb, nil)
	if err != nil || code != 7 || out.String() != "SHOUT" || errb.String() != "done" {
		t.Fatalf("code %d err %v out %q stderr %q", code, err, out.String(), errb.String())
	}

	c2, a2 := net.Pipe()
	go func() {
		NewFrameWriter(a2).Write(FrameError, []byte("node n2: no such container"))
		a2.Close()
	}()
	_, err = RunSession(context.Background(), c2, nil, io.Discard, io.Discard, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "node n2: no such container" {
		t.Fatalf("error frame: %v", err)
	}
}

// FuzzReadFrame: the decoder never panics, never returns a payload over the bound, and what it
// accepts re-encodes to the bytes it read.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, FrameStdout, []byte("hello")))
	f.Add(AppendFrame(AppendFrame(nil, FrameResize, []byte{0, 1, 0, 2}), FrameCloseStdin, nil))
	f.Add([]byte{FrameExit, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var re []byte
		for {
			fr, err := ReadFrame(r)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrProtocol) {
					t.Fatalf("error %v is neither io.EOF nor ErrProtocol", err)
				}
				if errors.Is(err, io.EOF) && !bytes.Equal(re, b) {
					t.Fatalf("clean end but re-encoding differs")
				}
				return
			}
			if len(fr.Payload) > MaxFramePayload {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			re = AppendFrame(re, fr.Type, fr.Payload)
		}
	})
}

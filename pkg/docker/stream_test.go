package docker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func muxFrame(stream byte, s string) []byte {
	h := make([]byte, 8, 8+len(s))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestDemuxLogs(t *testing.T) {
	ts := "2026-12-02T03:04:05.123456789Z"
	var in []byte
	in = append(in, muxFrame(1, ts+" out one\n")...)
	in = append(in, muxFrame(2, ts+" err one\n"+ts+" err two\n")...)
	// A line split across two frames, and one without a newline at the end.
	in = append(in, muxFrame(1, ts+" out ")...)
	in = append(in, muxFrame(1, "two\r\n")...)
	in = append(in, muxFrame(0, "stdin is not a log\n")...)
	in = append(in, muxFrame(1, ts+" last")...)
	var got []string
	err := DemuxLogs(bytes.NewReader(in), false, func(l LogLine) error {
		if l.Time.Format(time.RFC3339Nano) != ts {
			t.Errorf("line %q: time %v", l.Text, l.Time)
		}
		got = append(got, fmt.Sprintf("%d:%s", l.Stream, l.Text))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "1:out one|2:err one|2:err two|1:out two|1:last"; strings.Join(got, "|") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, "|"), want)
	}
	got = nil
	if err := DemuxLogs(strings.NewReader(ts+" raw\n"+ts+" tty\n"), true, func(l LogLine) error {
		got = append(got, fmt.Sprintf("%d:%s", l.Stream, l.Text))
		return nil
	}); err != nil || strings.Join(got, "|") != "1:raw|1:tty" {
		t.Fatalf("tty: %q %v", got, err)
	}
	trunc := muxFrame(1, "abcdef")[:10]
	if err := DemuxLogs(bytes.NewReader(trunc), false, func(LogLine) error { return nil }); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
}

func FuzzDemuxLogs(f *testing.F) {
	f.Add(muxFrame(1, "2026-12-02T03:04:05Z hi\n"), false)
	f.Add([]byte("2026-12-02T03:04:05Z raw"), true)
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, b []byte, tty bool) {
		_ = DemuxLogs(bytes.NewReader(b), tty, func(l LogLine) error {
			if len(l.Text) > maxLine+64 {
				t.Fatalf("line of %d bytes", len(l.Text))
			}
			if l.Stream != StreamStdout && l.Stream != StreamStderr {
				t.Fatalf("stream %d", l.Stream)
			}
			return nil
		})
	})
}

// Package sdnotifytest is a fake systemd notification socket for tests: a unixgram socket
// whose path goes into NOTIFY_SOCKET, and the datagrams the code under test sent to it.
package sdnotifytest

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Socket is the fake service manager's end.
type Socket struct {
	Path string
	conn *net.UnixConn
	msgs chan Msg
}

// Msg is one datagram and when it arrived.
type Msg struct {
	Text string
	At   time.Time
}

// Listen opens the socket and points NOTIFY_SOCKET at it (t.Setenv: the test must not be
// parallel). watchdog > 0 also sets WATCHDOG_USEC (and WATCHDOG_PID to this process), as
// systemd does for a unit with WatchdogSec.
func Listen(t testing.TB, watchdog time.Duration) *Socket {
	t.Helper()
	// A short directory: a unix socket path is limited to 108 bytes, t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Socket{Path: filepath.Join(dir, "notify"), msgs: make(chan Msg, 1024)}
	s.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.Path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			s.msgs <- Msg{Text: string(buf[:n]), At: time.Now()}
		}
	}()
	t.Setenv("NOTIFY_SOCKET", s.Path)
	if watchdog > 0 {
		t.Setenv("WATCHDOG_USEC", strconv.FormatInt(watchdog.Microseconds(), 10))
		t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	} else {
		t.Setenv("WATCHDOG_USEC", "")
		t.Setenv("WATCHDOG_PID", "")
	}
	return s
}

// Next returns the next datagram, or false when none came within timeout.
func (s *Socket) Next(timeout time.Duration) (Msg, bool) {
	select {
	case m, ok := <-s.msgs:
		return m, ok
	case <-time.After(timeout):
		return Msg{}, false
	}
}

// WaitFor returns the first datagram holding the line want ("READY=1"), skipping others, and
// the ones it skipped; false when none came within timeout.
func (s *Socket) WaitFor(want string, timeout time.Duration) (got Msg, skipped []string, ok bool) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return Msg{}, skipped, false
		}
		m, ok := s.Next(left)
		if !ok {
			return Msg{}, skipped, false
		}
		if HasLine(m.Text, want) {
			return m, skipped, true
		}
		skipped = append(skipped, m.Text)
	}
}

// HasLine reports whether a datagram holds the line.
func HasLine(msg, line string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

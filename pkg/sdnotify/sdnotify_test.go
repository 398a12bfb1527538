package sdnotify_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/sdnotify"
	"github.com/constellation-sh/constellation/pkg/sdnotify/sdnotifytest"
)

func TestSendsToNotifySocket(t *testing.T) {
	sock := sdnotifytest.Listen(t, 4*time.Second)
	n, err := sdnotify.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled() || n.WatchdogInterval() != 2*time.Second {
		t.Fatalf("enabled=%v interval=%s, want true and 2s (half of WATCHDOG_USEC)", n.Enabled(), n.WatchdogInterval())
	}
	for _, step := range []struct {
		send func() error
		want string
	}{
		{func() error { return n.Ready("serving") }, "READY=1\nSTATUS=serving"},
		{n.Watchdog, "WATCHDOG=1"},
		{func() error { return n.Status("3 voters") }, "STATUS=3 voters"},
		{n.Stopping, "STOPPING=1\nSTATUS=stopping"},
	} {
		if err := step.send(); err != nil {
			t.Fatal(err)
		}
		got, ok := sock.Next(5 * time.Second)
		if !ok || got.Text != step.want {
			t.Fatalf("datagram %q (received %v), want %q", got.Text, ok, step.want)
		}
	}
}

func TestNoSocketDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", "")
	n, err := sdnotify.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() || n.WatchdogInterval() != 0 {
		t.Fatalf("without NOTIFY_SOCKET: enabled=%v interval=%s", n.Enabled(), n.WatchdogInterval())
	}
	if err := n.Ready("x"); err != nil {
		t.Fatalf("Ready without a socket: %v", err)
	}
}

func TestWatchdogOfAnotherProcessIgnored(t *testing.T) {
	sdnotifytest.Listen(t, 0)
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(1)) // systemd's own, not ours
	n, err := sdnotify.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if n.WatchdogInterval() != 0 {
		t.Fatalf("a watchdog for pid 1 armed ours: %s", n.WatchdogInterval())
	}
}

func TestDeadSocketIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", t.TempDir()+"/nobody")
	n, _ := sdnotify.FromEnv()
	if err := n.Ready("x"); err == nil {
		t.Fatal("Ready to a socket nobody listens on: no error")
	}
}

package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/sdnotify/sdnotifytest"
)

// TestSystemdNotify runs a whole agent on the replicated store under a fake systemd: READY=1
// once it serves, WATCHDOG=1 at half of WatchdogSec, no ping while its main loop hangs, pings
// again once it is free, STOPPING=1 on shutdown.
func TestSystemdNotify(t *testing.T) {
	const watchdogSec = 400 * time.Millisecond
	sock := sdnotifytest.Listen(t, watchdogSec)
	cfg := config.Default()
	cfg.Node.Name = "sd"
	cfg.DataDir = filepath.Join(t.TempDir(), "sd")
	cfg.API.Address, cfg.Raft.Address, cfg.Gossip.Address = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Docker.Disabled, cfg.Mesh.Disabled = true, true
	raftAgents(t)("")(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// The watchdog's check is the real one, except that the test can make it hang (as a wedged
	// main loop would): it then blocks, ignoring its context, until released.
	var hang atomic.Pointer[chan struct{}]
	checks := make(chan struct{}, 100)
	a.systemdAlive = func(ctx context.Context) error {
		if h := hang.Load(); h != nil {
			select {
			case checks <- struct{}{}:
			default:
			}
			<-*h
		}
		return a.alive(ctx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		if h := hang.Swap(nil); h != nil {
			close(*h)
		}
		cancel()
		<-done
	}()

	msg, skipped, ok := sock.WaitFor("READY=1", 20*time.Second)
	if !ok {
		t.Fatalf("no READY=1 (got %q)", skipped)
	}
	if !strings.Contains(msg.Text, "STATUS=serving on "+a.APIAddress()) {
		t.Errorf("READY without the status line: %q", msg.Text)
	}
	// The API serves when READY arrives.
	if _, err := a.Store().Revision(ctx); err != nil {
		t.Fatalf("store after READY: %v", err)
	}

	// Pings at half of WatchdogSec (by their arrival times): three in a row, each about an
	// interval after the one before.
	var prev time.Time
	for i := 0; i < 4; i++ {
		m, skipped, ok := sock.WaitFor("WATCHDOG=1", 5*time.Second)
		if !ok {
			t.Fatalf("watchdog ping %d missing (got %q)", i, skipped)
		}
		if d := m.At.Sub(prev); i > 0 && (d < watchdogSec/4 || d > 4*watchdogSec) {
			t.Errorf("pings %s apart, want about %s", d, watchdogSec/2)
		}
		prev = m.At
	}

	// Hang the check: once it is hung (and a ping already in flight has arrived), no ping may
	// come for several WatchdogSec.
	h := make(chan struct{})
	hang.Store(&h)
	select {
	case <-checks:
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog check was not called again")
	}
	for {
		m, ok := sock.Next(100 * time.Millisecond)
		if !ok {
			break
		}
		t.Logf("sent before the hang: %q", m.Text)
	}
	if m, ok := sock.Next(3 * watchdogSec); ok {
		t.Fatalf("a hung main loop still notified systemd: %q", m.Text)
	}

	// Released, it pings again.
	hang.Store(nil)
	close(h)
	if _, skipped, ok := sock.WaitFor("WATCHDOG=1", 5*time.Second); !ok {
		t.Fatalf("no ping after the hang ended (got %q)", skipped)
	}

	cancel()
	if _, skipped, ok := sock.WaitFor("STOPPING=1", 15*time.Second); !ok {
		t.Fatalf("no STOPPING=1 on shutdown (got %q)", skipped)
	}
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
	done <- nil // for the deferred stop
}

// TestSystemdAbsent: outside systemd the agent sends nothing and runs as before.
func TestSystemdAbsent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	_, c := startAgent(t, "plain", nil)
	if err := c.Healthz(context.Background()); err != nil {
		t.Fatal(err)
	}
}

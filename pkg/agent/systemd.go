package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/sdnotify"
	"github.com/constellation-sh/constellation/pkg/store"
)

// systemd is the agent's side of a Type=notify unit (docs/install.md): READY=1 once the store
// and the API serve, WATCHDOG=1 from Run's main loop while the agent is alive, STOPPING=1 when
// it shuts down. Without NOTIFY_SOCKET it does nothing.
type systemd struct {
	n *sdnotify.Notifier
	// alive is the watchdog's check (a.alive; tests replace it).
	alive func(ctx context.Context) error
	// lastErr is the last failed check, logged once per change.
	lastErr string
}

func (a *Agent) newSystemd() *systemd {
	n, err := sdnotify.FromEnv()
	if err != nil {
		a.log.Warn("systemd watchdog off", "err", err)
	}
	s := &systemd{n: n, alive: a.alive}
	if a.systemdAlive != nil {
		s.alive = a.systemdAlive
	}
	return s
}

// ready sends READY=1 once the agent answers its own health check. It returns the watchdog's
// ticker channel (nil without a watchdog) and its stop function.
func (s *systemd) ready(ctx context.Context, a *Agent) (<-chan time.Time, func()) {
	if !s.n.Enabled() {
		return nil, func() {}
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.alive(cctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, func() {}
		}
		a.log.Warn("not ready for systemd yet", "err", err)
		select {
		case <-ctx.Done():
			return nil, func() {}
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err := s.n.Ready(fmt.Sprintf("serving on %s as node %s", a.APIAddress(), a.cfg.Node.Name)); err != nil {
		a.log.Warn("systemd notify", "err", err)
	}
	iv := s.n.WatchdogInterval()
	if iv <= 0 {
		return nil, func() {}
	}
	a.log.Info("systemd watchdog on", "interval", iv)
	t := time.NewTicker(iv)
	return t.C, t.Stop
}

// watchdog runs on Run's main loop: it pings only when the agent is alive, within half of
// WatchdogSec, so a main loop that hangs (or a store whose loop hangs) stops the pings and
// systemd restarts the agent.
func (s *systemd) watchdog(ctx context.Context, a *Agent) {
	cctx, cancel := context.WithTimeout(ctx, s.n.WatchdogInterval())
	defer cancel()
	if err := s.alive(cctx); err != nil {
		if msg := err.Error(); msg != s.lastErr {
			a.log.Warn("watchdog check failed: not pinging systemd", "err", err)
			s.lastErr = msg
		}
		return
	}
	s.lastErr = ""
	if err := s.n.Watchdog(); err != nil {
		a.log.Warn("systemd watchdog", "err", err)
	}
}

func (s *systemd) stopping(a *Agent) {
	if err := s.n.Stopping(); err != nil {
		a.log.Warn("systemd notify", "err", err)
	}
}

// alive is the watchdog's check: a stale read of the local store answers (it waits for the
// store's loop to commit what it applied, so a wedged loop or disk fails it; no quorum is
// needed) and the API's handler chain answers /healthz.
func (a *Agent) alive(ctx context.Context) error {
	if _, _, err := a.store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale()); err != nil {
		return fmt.Errorf("local store read: %w", err)
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/healthz", nil)
	rec := httptest.NewRecorder()
	a.api.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("api /healthz answered %d", rec.Code)
	}
	return nil
}

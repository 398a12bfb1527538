// Package sdnotify tells systemd how the agent is doing (sd_notify(3)): READY=1 once it
// serves, WATCHDOG=1 while its main loop is alive, STOPPING=1 when it shuts down. It wraps
// github.com/coreos/go-systemd/v22/daemon. Outside a Type=notify unit (no NOTIFY_SOCKET) every
// call does nothing, so the agent runs the same under systemd, in a container or a test.
package sdnotify

import (
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to the service manager.
type Notifier struct {
	socket   string
	watchdog time.Duration // WatchdogSec, 0 when the unit has none
}

// FromEnv reads what systemd hands a Type=notify service: NOTIFY_SOCKET, and WATCHDOG_USEC /
// WATCHDOG_PID when the unit sets WatchdogSec. A watchdog meant for another process (a
// WATCHDOG_PID that is not ours) is ignored.
func FromEnv() (*Notifier, error) {
	n := &Notifier{socket: os.Getenv("NOTIFY_SOCKET")}
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return n, fmt.Errorf("sdnotify: WATCHDOG_USEC: %w", err)
	}
	n.watchdog = wd
	return n, nil
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// WatchdogInterval is how often Watchdog must be called: half of the unit's WatchdogSec, as
// sd_watchdog_enabled(3) recommends. 0 when there is no watchdog.
func (n *Notifier) WatchdogInterval() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog / 2
}

// Ready says startup is finished (READY=1), with a status line for `systemctl status`.
func (n *Notifier) Ready(status string) error {
	return n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// Watchdog keeps the watchdog from firing (WATCHDOG=1).
func (n *Notifier) Watchdog() error { return n.send(daemon.SdNotifyWatchdog) }

// Stopping says shutdown has begun (STOPPING=1).
func (n *Notifier) Stopping() error {
	return n.send(daemon.SdNotifyStopping + "\nSTATUS=stopping")
}

// Status sets the status line `systemctl status` shows.
func (n *Notifier) Status(status string) error { return n.send("STATUS=" + status) }

func (n *Notifier) send(state string) error {
	if !n.Enabled() {
		return nil
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.socket, err)
	}
	return nil
}

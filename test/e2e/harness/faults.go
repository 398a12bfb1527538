package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Kill kills the node container outright (SIGKILL to everything in it): the machine loses power.
func (n *Node) Kill(ctx context.Context) error {
	_, err := run(ctx, "", "docker", "kill", n.Container)
	return err
}

// Stop stops the node container gracefully (SIGTERM, then SIGKILL after grace).
func (n *Node) Stop(ctx context.Context, grace time.Duration) error {
	_, err := run(ctx, "", "docker", "stop", "-t", fmt.Sprint(int(grace.Seconds())), n.Container)
	return err
}

// Start starts a stopped or killed node container again (same IP, same volumes) and waits
// until it is up.
func (n *Node) Start(ctx context.Context) error {
	if _, err := run(ctx, "", "docker", "start", n.Container); err != nil {
		return err
	}
	return n.WaitUp(ctx, n.c.opts.ReadyTimeout)
}

// Running reports whether the node container runs.
func (n *Node) Running(ctx context.Context) bool {
	out, err := run(ctx, "", "docker", "inspect", "-f", "{{.State.Running}}", n.Container)
	return err == nil && strings.TrimSpace(out) == "true"
}

// Disconnect cuts the node off the cluster network (a partition: it keeps running, alone).
func (n *Node) Disconnect(ctx context.Context) error {
	_, err := run(ctx, "", "docker", "network", "disconnect", "-f", n.c.Network, n.Container)
	return err
}

// Connect heals Disconnect, with the node's original IP.
func (n *Node) Connect(ctx context.Context) error {
	_, err := run(ctx, "", "docker", "network", "connect", "--ip", n.IP, n.c.Network, n.Container)
	return err
}

// DropTraffic makes the node drop every packet from and to the given nodes (all others when
// none are given) with iptables inside the node, leaving its interface up: a partition seen as
// timeouts rather than unreachable routes. HealTraffic undoes it.
func (n *Node) DropTraffic(ctx context.Context, peers ...*Node) error {
	if len(peers) == 0 {
		for _, p := range n.c.Nodes {
			if p != n {
				peers = append(peers, p)
			}
		}
	}
	script := "iptables -N CST-E2E 2>/dev/null || true; iptables -F CST-E2E; " +
		"for c in INPUT OUTPUT FORWARD; do iptables -C $c -j CST-E2E 2>/dev/null || iptables -I $c -j CST-E2E; done; "
	for _, p := range peers {
		script += fmt.Sprintf("iptables -A CST-E2E -s %s -j DROP; iptables -A CST-E2E -d %s -j DROP; ", p.IP, p.IP)
	}
	_, err := n.Exec(ctx, "sh", "-c", script)
	return err
}

// HealTraffic removes DropTraffic's rules.
func (n *Node) HealTraffic(ctx context.Context) error {
	_, err := n.Exec(ctx, "sh", "-c", "iptables -F CST-E2E 2>/dev/null || true")
	return err
}

// SlowNetwork limits the node's outgoing bandwidth on the cluster network with a token bucket
// (tc tbf), e.g. rate "256kbit". The kernel here has no netem (CONFIG_NET_SCH_NETEM is off), so
// added latency, jitter and loss are not available; a tbf queue adds queueing delay only under load.
func (n *Node) SlowNetwork(ctx context.Context, rate string) error {
	dev, err := n.NetDev(ctx)
	if err != nil {
		return err
	}
	_, err = n.Exec(ctx, "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "16kbit", "latency", "500ms")
	return err
}

// ClearNetwork removes SlowNetwork's queue discipline.
func (n *Node) ClearNetwork(ctx context.Context) error {
	dev, err := n.NetDev(ctx)
	if err != nil {
		return err
	}
	_, err = n.Exec(ctx, "tc", "qdisc", "del", "dev", dev, "root")
	return err
}

// NetDev returns the name of the node's interface on the cluster network (eth0 at first; a
// reconnect after Disconnect gives it a new name).
func (n *Node) NetDev(ctx context.Context) (string, error) {
	out, err := n.Exec(ctx, "ip", "-o", "-4", "addr", "show")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && strings.HasPrefix(f[3], n.IP+"/") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("node %s: no interface with %s in %q", n.Name, n.IP, out)
}

// RestartDockerd kills the node's dockerd (its containers stop, as dockerd runs without
// live-restore); nodeinit starts it again a second later. It returns once it answers again.
func (n *Node) RestartDockerd(ctx context.Context) error {
	if _, err := n.Exec(ctx, "sh", "-c", "kill $(cat /var/run/docker.pid)"); err != nil {
		return err
	}
	// Wait for the old one to go, then for the new one.
	_ = poll(ctx, 30*time.Second, 200*time.Millisecond, func() error {
		if _, err := n.Docker(ctx, "info", "--format", "{{.ServerVersion}}"); err == nil {
			return fmt.Errorf("still up")
		}
		return nil
	}, func(err error) error { return err })
	return n.waitDocker(ctx, 60*time.Second)
}

// AgentPID returns the pid of the node's running agent inside the node (nodeinit writes it).
func (n *Node) AgentPID(ctx context.Context) (string, error) {
	out, err := n.Exec(ctx, "cat", "/run/nodeinit-agent.pid")
	return strings.TrimSpace(out), err
}

// RestartAgent sends SIGTERM to the node's agent (a graceful stop: an upgrade or a config
// change); nodeinit starts it again a second after it exits, on the same data dir, as a
// supervisor would. Containers, dockerd and Traefik keep running. It returns once a new agent
// process answers /healthz.
func (n *Node) RestartAgent(ctx context.Context, max time.Duration) error {
	old, err := n.AgentPID(ctx)
	if err != nil || old == "" {
		return fmt.Errorf("node %s: agent pid: %q %v", n.Name, old, err)
	}
	if _, err := n.Exec(ctx, "sh", "-c", "kill -TERM "+old); err != nil {
		return fmt.Errorf("node %s: SIGTERM agent %s: %w", n.Name, old, err)
	}
	if err := poll(ctx, max, 100*time.Millisecond, func() error {
		pid, err := n.AgentPID(ctx)
		if err != nil {
			return err
		}
		if pid == old {
			return fmt.Errorf("agent %s not restarted yet", old)
		}
		return nil
	}, func(err error) error {
		return fmt.Errorf("node %s: agent not restarted within %s: %w\n%s", n.Name, max, err, n.LogTail("agent", 20))
	}); err != nil {
		return err
	}
	return n.WaitUp(ctx, max)
}

// DockerdPID returns the pid of the node's dockerd inside the node.
func (n *Node) DockerdPID(ctx context.Context) (string, error) {
	out, err := n.Exec(ctx, "cat", "/var/run/docker.pid")
	return strings.TrimSpace(out), err
}

// makeDataDisk creates and loop-mounts the node's data file system (Options.DataDiskSize).
func (n *Node) makeDataDisk(ctx context.Context, size string) (string, error) {
	img := filepath.Join(n.c.Dir, "disks", n.Name+".img")
	dir := filepath.Join(n.c.Dir, "disks", n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, cmd := range [][]string{
		{"truncate", "-s", size, img},
		{"mkfs.ext4", "-q", "-F", img},
		{"mount", "-o", "loop", img, dir},
	} {
		if _, err := run(ctx, "", cmd[0], cmd[1:]...); err != nil {
			return "", fmt.Errorf("node %s data disk: %w", n.Name, err)
		}
	}
	return dir, nil
}

// unmountDisks unmounts the data disks under a run directory (loop devices detach with them).
func unmountDisks(runDir string) error {
	if runDir == "" {
		return nil
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil
	}
	var errs []error
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], filepath.Join(runDir, "disks")+"/") {
			if _, err := run(context.Background(), "", "umount", "-l", f[1]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// FillDisk fills the node's data file system (needs Options.DataDiskSize) until no byte is
// left, with one file; FreeDisk removes it.
func (n *Node) FillDisk(ctx context.Context) error {
	if n.c.opts.DataDiskSize == "" {
		return fmt.Errorf("node %s: FillDisk needs Options.DataDiskSize (the default data volume is the host's disk)", n.Name)
	}
	// dd stops with "No space left on device" (exit 1): that is the point.
	_, _ = n.Exec(ctx, "sh", "-c", "dd if=/dev/zero of=/var/lib/constellation/e2e-fill bs=1M 2>/dev/null; sync")
	out, err := n.Exec(ctx, "df", "--output=avail", "-B1", "/var/lib/constellation")
	if err != nil {
		return err
	}
	f := strings.Fields(out)
	if len(f) < 2 || f[len(f)-1] != "0" {
		return fmt.Errorf("node %s: data disk not full: %q", n.Name, out)
	}
	return nil
}

// FreeDisk removes FillDisk's file.
func (n *Node) FreeDisk(ctx context.Context) error {
	_, err := n.Exec(ctx, "rm", "-f", "/var/lib/constellation/e2e-fill")
	return err
}

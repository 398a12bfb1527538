package agent

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/tailscale"
	"github.com/constellation-sh/constellation/pkg/tailscale/tailscaletest"
)

// resolve runs resolveTailscale on cfg alone (no store, no listener).
func resolve(t *testing.T, cfg *config.Config) error {
	t.Helper()
	a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	return a.resolveTailscale()
}

func tailscaleConfig(t *testing.T, socket string, mut func(*config.Config)) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Node.Name = "n2"
	cfg.DataDir = t.TempDir()
	cfg.API.Address = "0.0.0.0:7480"
	cfg.API.TokenFile = "/nonexistent/token" // resolution reads no token; Validate wants one off loopback
	cfg.Node.AdvertiseAddress = "tailscale"
	cfg.Join = []string{"tailscale:constellation", "10.0.0.9:7480"}
	cfg.Tailscale.Socket = socket
	cfg.Tailscale.Wait = 0
	if mut != nil {
		mut(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func fakeTailnet() tailscale.Status {
	return tailscaletest.Running(tailscaletest.Node("n2", true, []string{"100.64.0.2", "fd7a:115c:a1e0::2"}, "tag:constellation"),
		tailscaletest.Node("n3", true, []string{"100.64.0.3"}, "tag:constellation"),
		tailscaletest.Node("n1", true, []string{"100.64.0.1"}, "tag:constellation"),
		tailscaletest.Node("a-gone", false, []string{"100.64.0.4"}, "tag:constellation"),
		tailscaletest.Node("laptop", true, []string{"100.64.0.5"}))
}

// The agent's configuration resolved through a fake tailscaled: the advertise address is this
// node's Tailscale IPv4; tailscale:TAG becomes the online tagged peers' API addresses in name
// order (the API port is this node's), other --join entries kept as they are.
func TestResolveTailscale(t *testing.T) {
	f := tailscaletest.Start(t, fakeTailnet())
	cfg := tailscaleConfig(t, f.Socket, nil)
	if err := resolve(t, cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Node.AdvertiseAddress != "100.64.0.2" {
		t.Errorf("advertise %q", cfg.Node.AdvertiseAddress)
	}
	if got := strings.Join(cfg.Join, ","); got != "100.64.0.1:7480,100.64.0.3:7480,10.0.0.9:7480" {
		t.Errorf("join %s", got)
	}
	if f.Requests() != 1 {
		t.Errorf("%d status requests, want 1", f.Requests())
	}
	// Nothing of Tailscale asked: tailscaled is not consulted.
	plain := tailscaleConfig(t, filepath.Join(t.TempDir(), "none.sock"), func(c *config.Config) {
		c.Node.AdvertiseAddress, c.Join = "10.0.0.2", []string{"10.0.0.9:7480"}
	})
	if err := resolve(t, plain); err != nil {
		t.Fatal(err)
	}
}

// A tailscaled that is not running, logged out, stopped or without tagged peers is a clear
// error naming the option; a node that holds a store starts without the discovered --join.
func TestResolveTailscaleErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "tailscaled.sock")
	cfg := tailscaleConfig(t, missing, nil)
	if err := resolve(t, cfg); !errors.Is(err, tailscale.ErrNotRunning) || !strings.Contains(err.Error(), "--node.advertiseAddress=tailscale") {
		t.Errorf("not running: %v", err)
	}
	for state, want := range map[string]string{tailscale.StateNeedsLogin: "tailscale up", tailscale.StateStopped: "Stopped"} {
		st := fakeTailnet()
		st.BackendState = state
		f := tailscaletest.Start(t, st)
		if err := resolve(t, tailscaleConfig(t, f.Socket, nil)); !errors.Is(err, tailscale.ErrNotConnected) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", state, err)
		}
	}
	f := tailscaletest.Start(t, fakeTailnet())
	cfg = tailscaleConfig(t, f.Socket, func(c *config.Config) { c.Join = []string{"tailscale:tag:nobody"} })
	if err := resolve(t, cfg); err == nil || !strings.Contains(err.Error(), "--join=tailscale:tag:nobody: no online peer tagged tag:nobody") {
		t.Errorf("no tagged peer: %v", err)
	}
	cfg = tailscaleConfig(t, f.Socket, func(c *config.Config) { c.API.Address = "0.0.0.0:0" })
	if err := resolve(t, cfg); err == nil || !strings.Contains(err.Error(), "fixed --api.address port") {
		t.Errorf("port 0: %v", err)
	}
	// A restart: the data dir holds a store, tailscaled is down → join dropped, no error
	// (--node.advertiseAddress given literally).
	cfg = tailscaleConfig(t, missing, func(c *config.Config) { c.Node.AdvertiseAddress = "100.64.0.2" })
	if err := os.WriteFile(filepath.Join(cfg.DataDir, raftDBFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := resolve(t, cfg); err != nil || strings.Join(cfg.Join, ",") != "10.0.0.9:7480" {
		t.Errorf("restart with tailscaled down: %v, join %v", err, cfg.Join)
	}
}

func TestTailscaleConfigValidation(t *testing.T) {
	cfg := config.Default()
	cfg.Node.Name = "n"
	cfg.Join = []string{"tailscale:9bad"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "tailscale:9bad") {
		t.Errorf("bad tag: %v", err)
	}
	cfg = config.Default()
	cfg.Node.Name, cfg.Node.AdvertiseAddress = "n", "tailscales"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--node.advertiseAddress") {
		t.Errorf("typo in tailscale: %v", err)
	}
}

// Two in-process agents: n2 advertises its "Tailscale" address and joins through
// --join=tailscale:constellation. The fake tailnet puts n1 at 127.0.0.1 and n2 at 127.0.0.2
// (both loopback, so one machine can run both with the same API port), with an offline tagged
// node named first and an untagged one in between: n2 joins n1, the store has both members.
func TestAgentsJoinThroughTailscale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents; run without -short")
	}
	first := freeAddr(t)
	_, port, _ := net.SplitHostPort(first)
	if ln, err := net.Listen("tcp", "127.0.0.2:"+port); err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	} else {
		ln.Close()
	}
	f := tailscaletest.Start(t, tailscaletest.Running(
		tailscaletest.Node("ts-n2", true, []string{"127.0.0.2"}, "tag:constellation"),
		tailscaletest.Node("ts-n1", true, []string{"127.0.0.1"}, "tag:constellation"),
		tailscaletest.Node("ts-a-offline", false, []string{"127.0.0.3"}, "tag:constellation"),
		tailscaletest.Node("ts-laptop", true, []string{"127.0.0.4"})))
	raft := raftAgents(t)
	_, a1 := startAgentStoppable(t, "ts-n1", func(c *config.Config) {
		raft("")(c)
		c.API.Address = first
	})
	_, a2 := startAgentStoppable(t, "ts-n2", func(c *config.Config) {
		raft("")(c)
		c.API.Address = "127.0.0.2:" + port
		c.Raft.Address, c.Gossip.Address = "127.0.0.2:0", "127.0.0.2:0"
		c.Node.AdvertiseAddress = "tailscale"
		c.Join = []string{"tailscale:constellation"}
		c.Tailscale.Socket, c.Tailscale.Wait = f.Socket, 0
	})
	if a2.cfg.Node.AdvertiseAddress != "127.0.0.2" || strings.Join(a2.cfg.Join, ",") != first {
		t.Fatalf("n2 resolved advertise %s join %v", a2.cfg.Node.AdvertiseAddress, a2.cfg.Join)
	}
	if a2.raft.ClusterID() != a1.raft.ClusterID() {
		t.Fatalf("n2 is in cluster %s, n1 in %s", a2.raft.ClusterID(), a1.raft.ClusterID())
	}
	eventually(t, "both members and Nodes", func() bool {
		if len(a1.raft.Members()) != 2 {
			return false
		}
		for _, n := range []string{"ts-n1", "ts-n2"} {
			if _, err := a2.raft.Get(t.Context(), v1.KindNode, n); err != nil {
				return false
			}
		}
		return true
	})
}

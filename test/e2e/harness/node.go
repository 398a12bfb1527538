package harness

// One node container: its agent arguments, commands inside it, waits and its addresses.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
)

func (n *Node) raftRoles(ctx context.Context) (map[string]string, error) {
	lr, err := n.Client().List(ctx, v1.KindNode, "")
	if err != nil {
		return nil, err
	}
	roles := map[string]string{}
	for _, o := range lr.Items {
		if nd, ok := o.(*v1.Node); ok {
			roles[nd.Metadata.Name] = string(nd.Status.RaftRole)
		}
	}
	return roles, nil
}

// agentArgs are the node's constellation-agent flags.
func (n *Node) agentArgs() []string {
	c := n.c
	args := []string{
		"--node.name=" + n.Name,
		"--dataDir=/var/lib/constellation",
		fmt.Sprintf("--api.address=0.0.0.0:%d", APIPort),
		"--api.tokenFile=/etc/constellation/token",
		fmt.Sprintf("--raft.address=%s:%d", n.IP, RaftPort),
		fmt.Sprintf("--gossip.address=%s:%d", n.IP, GossipPort),
		"--node.advertiseAddress=" + n.IP,
		"--docker.host=unix:///var/run/docker.sock",
		"--node.labels.zone=" + n.Name,
	}
	if n.LB {
		args = append(args, "--node.labels.role=lb")
	}
	if c.opts.MemoryStore {
		args = append(args, "--store.memory=true")
	} else if n != c.Nodes[0] {
		args = append(args, fmt.Sprintf("--join=%s:%d", c.Nodes[0].IP, APIPort))
	}
	args = append(args, c.opts.AgentArgs...)
	return append(args, c.opts.NodeAgentArgs[n.Name]...)
}

// LogDir is the host directory holding the node's dockerd.log, agent.log, traefik.log.
func (n *Node) LogDir() string { return filepath.Join(n.c.Dir, "logs", n.Name) }

// Exec runs a command inside the node container and returns its output.
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "", "docker", append([]string{"exec", n.Container}, args...)...)
}

// Docker runs the docker CLI against the node's own dockerd.
func (n *Node) Docker(ctx context.Context, args ...string) (string, error) {
	return n.Exec(ctx, append([]string{"docker"}, args...)...)
}

func (n *Node) waitDocker(ctx context.Context, max time.Duration) error {
	return poll(ctx, max, 300*time.Millisecond, func() error {
		_, err := n.Docker(ctx, "info", "--format", "{{.ServerVersion}}")
		return err
	}, func(err error) error {
		return fmt.Errorf("node %s: inner dockerd not answering after %s: %w\n%s", n.Name, max, err, n.LogTail("dockerd", 15))
	})
}

// WaitUp waits until the node's dockerd answers, its agent answers /healthz and, on load
// balancers, Traefik answers its ping.
func (n *Node) WaitUp(ctx context.Context, max time.Duration) error {
	t0 := time.Now()
	if err := n.waitDocker(ctx, max); err != nil {
		return err
	}
	hc := probeClient(time.Second)
	get := func(url string) error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
	agentLog := filepath.Join(n.LogDir(), "agent.log")
	var offset int64
	if fi, err := os.Stat(agentLog); err == nil {
		offset = fi.Size()
	}
	if err := poll(ctx, max-time.Since(t0), 200*time.Millisecond, func() error {
		if err := get(n.APIURL() + "/healthz"); err != nil {
			// An agent that keeps exiting will not come up: say so now rather than at the timeout.
			if b, rerr := os.ReadFile(agentLog); rerr == nil && int64(len(b)) > offset {
				if k := strings.Count(string(b[offset:]), "---- nodeinit: agent exited"); k >= 3 {
					return errCrashLoop{k}
				}
			}
			return err
		}
		return nil
	}, func(err error) error {
		return fmt.Errorf("node %s: agent not answering after %s: %w\n%s", n.Name, max, err, n.LogTail("agent", 20))
	}); err != nil {
		return err
	}
	if n.LB {
		if err := poll(ctx, max-time.Since(t0), 200*time.Millisecond, func() error {
			return get(n.TraefikAPIURL() + "/ping")
		}, func(err error) error {
			return fmt.Errorf("node %s: traefik not answering after %s: %w\n%s", n.Name, max, err, n.LogTail("traefik", 20))
		}); err != nil {
			return err
		}
	}
	return nil
}

// WaitReady waits until the node's agent answers /readyz with 200.
func (n *Node) WaitReady(ctx context.Context, max time.Duration) error {
	hc := probeClient(2 * time.Second)
	return poll(ctx, max, 250*time.Millisecond, func() error {
		resp, err := hc.Get(n.APIURL() + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			var b [300]byte
			k, _ := resp.Body.Read(b[:])
			return fmt.Errorf("readyz %s: %s", resp.Status, strings.TrimSpace(string(b[:k])))
		}
		return nil
	}, func(err error) error {
		return fmt.Errorf("node %s: not ready after %s: %w\n%s", n.Name, max, err, n.LogTail("agent", 20))
	})
}

// probeClient is for the health endpoints only (/healthz, /readyz, Traefik's ping): they carry no
// token and tell nothing secret, so the agent's certificate is not checked. Everything else goes
// through Client, which trusts the cluster CA through the proof over the token.
func probeClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // health probes only
	}}
}

// APIURL is the node's agent API base URL, reachable from the host (TLS: the API listens off
// loopback; clients trust the cluster CA through the proof over the token).
func (n *Node) APIURL() string { return fmt.Sprintf("https://%s:%d", n.IP, APIPort) }

// WebURL is the node's Traefik "web" entry point.
func (n *Node) WebURL() string { return fmt.Sprintf("http://%s:%d", n.IP, TraefikWebPort) }

// TraefikAPIURL is the node's Traefik API (its live configuration).
func (n *Node) TraefikAPIURL() string { return fmt.Sprintf("http://%s:%d", n.IP, TraefikAPIPort) }

// Client returns an API client for the node's agent, with the cluster token.
func (n *Node) Client() *client.Client { return n.ClientTimeout(5 * time.Second) }

// ClientTimeout is Client with another bound on each request: for the few that move a lot of
// data (a List of a hundred 1 MiB Secrets).
func (n *Node) ClientTimeout(d time.Duration) *client.Client {
	cl, err := client.New(client.Config{Server: n.APIURL(), Token: n.c.Token, RequestTimeout: d})
	if err != nil {
		panic(err) // the URL is ours
	}
	return cl
}

// LogTail returns the last lines of one of the node's logs (dockerd, agent, traefik, nodeinit).
func (n *Node) LogTail(which string, lines int) string {
	b, err := os.ReadFile(filepath.Join(n.LogDir(), which+".log"))
	if err != nil {
		return fmt.Sprintf("(%s %s log: %v)", n.Name, which, err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return fmt.Sprintf("---- %s %s.log (last %d lines)\n%s", n.Name, which, len(all), strings.Join(all, "\n"))
}

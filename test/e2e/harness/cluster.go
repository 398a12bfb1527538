package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ports inside every node container (each node has its own IP, so they never collide).
const (
	APIPort        = 7480
	RaftPort       = 7481
	GossipPort     = 7482
	TraefikWebPort = 80   // entry point "web"
	TraefikAPIPort = 8099 // Traefik's own API (entry point "traefik"), to read its live config
)

// Labels on every Docker object the harness creates.
const (
	LabelE2E  = "constellation.e2e"
	LabelRun  = "constellation.e2e.run"
	LabelPID  = "constellation.e2e.pid"
	runPrefix = "cst-e2e-"
)

// Options configure a cluster. The zero value is a 3-node cluster whose first two nodes are
// load balancers, run against the product's contract (persistent store, --join).
type Options struct {
	// Nodes is the number of node containers. Default 3.
	Nodes int
	// LBNodes is how many nodes (the first ones) are labelled role=lb and run Traefik. Default 2
	// (with 3 nodes: n1 and n2; n3 is a worker, so killing it keeps both load balancers up).
	LBNodes int
	// MemoryStore runs every agent on --store.memory without --join: N independent one-node
	// clusters. Only for testing the harness itself while the replicated store is not wired.
	MemoryStore bool
	// AgentArgs are extra agent flags for every node.
	AgentArgs []string
	// NodeAgentArgs are extra agent flags per node name ("n1": {...}).
	NodeAgentArgs map[string][]string
	// TraefikPollInterval is the HTTP provider's poll interval. Default "1s".
	TraefikPollInterval string
	// DataDiskSize, when set (e.g. "128M"), gives every node's /var/lib/constellation its own
	// ext4 file system of that size (a loop-mounted image in the run directory) instead of a
	// volume on the host's disk, so FillDisk can fill it. It survives node restarts.
	DataDiskSize string
	// Setup, when set, runs once the network exists (c.Gateway is the host's address on it) and
	// before any node starts: it returns extra agent flags for every node and files to place in
	// every node's /etc/constellation (mode 0600), e.g. a fake Cloudflare API on the gateway.
	Setup func(c *Cluster) (agentArgs []string, files map[string]string, err error)
	// ReadyTimeout bounds the wait for every node to be up. Default 90s.
	ReadyTimeout time.Duration
	// Logf reports progress (t.Logf). Default: discard.
	Logf func(string, ...any)
	// AgentBinary, when set, is the constellation-agent every node starts with instead of the
	// one built from this tree (an older release for the upgrade scenario: BuildAgentAt).
	// Node.ReplaceAgent swaps it for another while the node runs.
	AgentBinary string
}

func (o *Options) defaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.LBNodes == 0 {
		o.LBNodes = min(2, o.Nodes)
	}
	if o.TraefikPollInterval == "" {
		o.TraefikPollInterval = "1s"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 90 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Cluster is one running set of node containers.
type Cluster struct {
	RunID   string
	Network string
	Subnet  *net.IPNet
	Gateway net.IP
	// Dir holds the run's token, Traefik configuration and every node's logs.
	Dir   string
	Token string
	Nodes []*Node
	Art   *Artifacts
	opts  Options

	closeOnce sync.Once
}

// Node is one node container.
type Node struct {
	Name      string // n1, n2, ...
	Container string // <run>-n1
	IP        string
	LB        bool
	c         *Cluster
}

// Start sweeps leftovers of dead runs, builds what is missing and starts a cluster. The caller
// must Close it (Start closes what it made if it fails). SIGINT/SIGTERM also close it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts.defaults()
	handleSignals()
	art, err := Prepare(ctx, opts.Logf)
	if err != nil {
		return nil, err
	}
	Sweep(ctx, opts.Logf)
	c := &Cluster{RunID: runPrefix + randHex(4), Art: art, opts: opts}
	registerLive(c)
	if err := c.start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Cluster) logf(format string, args ...any) { c.opts.Logf(format, args...) }

func (c *Cluster) labels() []string {
	return []string{"--label", LabelE2E + "=1", "--label", LabelRun + "=" + c.RunID, "--label", LabelPID + "=" + strconv.Itoa(os.Getpid())}
}

func (c *Cluster) start(ctx context.Context) error {
	t0 := time.Now()
	var err error
	if c.Dir, err = os.MkdirTemp("", c.RunID+"-"); err != nil {
		return err
	}
	c.Network = c.RunID + "-net"
	// Static node IPs need a user-configured subnet: try random /24s in 10.214.0.0/16 until one
	// does not overlap an existing network.
	for attempt := 0; ; attempt++ {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		subnet, gw := fmt.Sprintf("10.214.%d.0/24", b[0]), fmt.Sprintf("10.214.%d.1", b[0])
		args := append([]string{"network", "create", "--subnet", subnet, "--gateway", gw}, c.labels()...)
		_, err := run(ctx, "", "docker", append(args, c.Network)...)
		if err == nil {
			_, c.Subnet, _ = net.ParseCIDR(subnet)
			c.Gateway = net.ParseIP(gw)
			break
		}
		if attempt > 20 || !strings.Contains(err.Error(), "overlap") {
			return err
		}
	}

	c.Token = randHex(16)
	provider := randHex(16)
	etc := filepath.Join(c.Dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	// The agents' API tokens: the harness and ctl use the admin one, Traefik a provider token.
	tokens := fmt.Sprintf("e2e admin %s\ntraefik provider %s\n", c.Token, provider)
	if err := os.WriteFile(filepath.Join(etc, "token"), []byte(tokens), 0o600); err != nil {
		return err
	}
	traefikToml := fmt.Sprintf(`[entryPoints.web]
  address = ":%d"
[entryPoints.traefik]
  address = ":%d"
[api]
  insecure = true
[ping]
[providers]
  # Traefik applies at most one configuration per provider per throttle period (default 2s): a
  # shorter one lets a dead node's endpoints leave within the poll interval (docs/traefik.md).
  providersThrottleDuration = "200ms"
[providers.http]
  # The API listens off loopback, so it speaks TLS with the node certificate: Traefik trusts
  # the cluster CA the agent keeps in its data dir (nodeinit starts Traefik once it exists).
  endpoint = "https://127.0.0.1:%d/api/providers/traefik"
  pollInterval = %q
  pollTimeout = "2s"
  [providers.http.tls]
    ca = "/var/lib/constellation/ca.crt"
  [providers.http.headers]
    Authorization = "Bearer %s"
[global]
  checkNewVersion = false
  sendAnonymousUsage = false
[log]
  level = "INFO"
  noColor = true
`, TraefikWebPort, TraefikAPIPort, APIPort, c.opts.TraefikPollInterval, provider)
	if err := os.WriteFile(filepath.Join(etc, "traefik.toml"), []byte(traefikToml), 0o644); err != nil {
		return err
	}

	if c.opts.Setup != nil {
		args, files, err := c.opts.Setup(c)
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		c.opts.AgentArgs = append(c.opts.AgentArgs, args...)
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o600); err != nil {
				return err
			}
		}
	}

	base := c.Subnet.IP.To4()
	for i := 1; i <= c.opts.Nodes; i++ {
		ip := net.IPv4(base[0], base[1], base[2], base[3]+byte(10+i))
		n := &Node{Name: "n" + strconv.Itoa(i), Container: c.RunID + "-n" + strconv.Itoa(i), IP: ip.String(), LB: i <= c.opts.LBNodes, c: c}
		c.Nodes = append(c.Nodes, n)
	}
	// The first node bootstraps; the others join it (in order, each once the previous is up, so
	// raft adds one voter at a time).
	for _, n := range c.Nodes {
		if err := n.create(ctx); err != nil {
			return err
		}
		if err := n.WaitUp(ctx, c.opts.ReadyTimeout); err != nil {
			return err
		}
	}
	if !c.opts.MemoryStore {
		if err := c.WaitFormed(ctx, c.opts.ReadyTimeout); err != nil {
			return err
		}
	}
	if c.imagesViaAgents() {
		if err := c.distributeImages(ctx, c.opts.ReadyTimeout); err != nil {
			return err
		}
	}
	c.logf("harness: %s up: %d nodes on %s (%s) in %s; logs in %s", c.RunID, len(c.Nodes), c.Network, c.Subnet, time.Since(t0).Round(time.Millisecond), c.Dir)
	return nil
}

// WaitFormed waits until every node is a raft voter (its Node object says raftRole leader or
// follower, not learner), as the first node's API reports. Faults injected before that test a
// cluster still forming: a node partitioned while the others are learners leaves no quorum.
func (c *Cluster) WaitFormed(ctx context.Context, max time.Duration) error {
	t0 := time.Now()
	err := poll(ctx, max, 250*time.Millisecond, func() error {
		var errs []string
		for _, n := range c.Nodes {
			roles, err := n.raftRoles(ctx)
			if err != nil {
				errs = append(errs, n.Name+": "+err.Error())
				continue
			}
			var bad []string
			leaders := 0
			for _, m := range c.Nodes {
				switch r := roles[m.Name]; r {
				case "leader":
					leaders++
				case "follower":
				default:
					bad = append(bad, fmt.Sprintf("%s=%q", m.Name, r))
				}
			}
			if len(bad) > 0 || leaders != 1 {
				return fmt.Errorf("raft roles as %s sees them: %v (%d leaders; not voters: %s)", n.Name, roles, leaders, strings.Join(bad, ", "))
			}
			return nil
		}
		return fmt.Errorf("no node answered: %s", strings.Join(errs, "; "))
	}, func(err error) error {
		return fmt.Errorf("cluster not formed (every node a voter) after %s: %w", max, err)
	})
	if err == nil {
		c.logf("harness: every node a raft voter after %s", time.Since(t0).Round(time.Millisecond))
	}
	return err
}

func (n *Node) create(ctx context.Context) error {
	c := n.c
	if err := os.MkdirAll(n.LogDir(), 0o755); err != nil {
		return err
	}
	for _, v := range []string{"docker", "data"} {
		args := append([]string{"volume", "create"}, c.labels()...)
		if _, err := run(ctx, "", "docker", append(args, n.Container+"-"+v)...); err != nil {
			return err
		}
	}
	dataMount := n.Container + "-data:/var/lib/constellation"
	if c.opts.DataDiskSize != "" {
		dir, err := n.makeDataDisk(ctx, c.opts.DataDiskSize)
		if err != nil {
			return err
		}
		dataMount = dir + ":/var/lib/constellation"
	}
	dockerd := strings.Join([]string{
		"--storage-driver=vfs",
		"--cgroup-parent=/" + n.Container,
		"--bip=10.213.0.1/24",
		"--log-level=warn",
		"--host=unix:///var/run/docker.sock",
	}, " ")
	a := c.Art
	args := []string{"run", "-d", "--name", n.Container, "--hostname", n.Name,
		"--network", c.Network, "--ip", n.IP,
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
		"-v", "/usr:/usr:ro", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
		"--tmpfs", "/run", "--tmpfs", "/tmp",
		"-v", n.Container + "-docker:/var/lib/docker",
		"-v", dataMount,
		"-v", n.binDir() + ":/opt/constellation/bin:ro",
		"-v", a.NodeInit + ":/opt/constellation/nodeinit:ro",
		"-v", a.Traefik + ":/opt/constellation/traefik:ro",
		"-v", filepath.Join(c.Dir, "etc") + ":/etc/constellation:ro",
		"-v", n.LogDir() + ":/var/log/e2e",
	}
	args = append(args, c.labels()...)
	// docker-init (tini, from the host's /usr) is PID 1: it reaps orphans and forwards signals.
	agent := a.Agent
	if c.opts.AgentBinary != "" {
		agent = c.opts.AgentBinary
	}
	if err := n.installAgent(agent); err != nil {
		return err
	}
	args = append(args, c.Art.NodeImage, c.Art.Init, "--", "/opt/constellation/nodeinit", "--logDir=/var/log/e2e",
		"--agentBin=/opt/constellation/bin/constellation-agent",
		"--dockerd="+dockerd, "--agent="+strings.Join(n.agentArgs(), " "))
	if n.LB {
		args = append(args, "--traefikConfig=/etc/constellation/traefik.toml", "--traefikAfter=/var/lib/constellation/ca.crt")
	}
	if _, err := run(ctx, "", "docker", args...); err != nil {
		return fmt.Errorf("start node %s: %w", n.Name, err)
	}
	if err := n.waitDocker(ctx, 60*time.Second); err != nil {
		return err
	}
	if n != c.Nodes[0] && c.imagesViaAgents() {
		c.logf("harness: %s: dockerd up; its images will come from %s through the agents", n.Name, c.Nodes[0].Name)
		return nil
	}
	t0 := time.Now()
	if _, err := run(ctx, "", "sh", "-c", `docker exec -i "$1" docker load -q < "$2"`, "sh", n.Container, a.ImagesTar); err != nil {
		return fmt.Errorf("node %s: load images: %w", n.Name, err)
	}
	c.logf("harness: %s: dockerd up, %d images loaded in %s", n.Name, len(a.Images), time.Since(t0).Round(time.Millisecond))
	return nil
}

// LBs returns the load-balancer nodes.
func (c *Cluster) LBs() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.LB {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node with the given name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NodeByIP returns the node with the given IP, or nil.
func (c *Cluster) NodeByIP(ip string) *Node {
	for _, n := range c.Nodes {
		if n.IP == ip {
			return n
		}
	}
	return nil
}

// Ctl runs ctl (built from the tree) from outside the cluster against the given node, with the
// cluster token, in the repository root (so `-f specs/hello` works). It returns combined output.
func (c *Cluster) Ctl(ctx context.Context, n *Node, args ...string) (string, error) {
	full := append([]string{"--server", n.APIURL(), "--token", c.Token}, args...)
	cmd := execCommand(ctx, c.Art.Ctl, full...)
	cmd.Dir = c.Art.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// DumpLogs returns the tails of every node's logs (for a failing test).
func (c *Cluster) DumpLogs(lines int) string {
	var b strings.Builder
	for _, n := range c.Nodes {
		for _, w := range []string{"nodeinit", "agent", "traefik"} {
			if w == "traefik" && !n.LB {
				continue
			}
			b.WriteString(n.LogTail(w, lines))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Close removes every container, volume, data disk and the network of the run, and c.Dir unless
// KeepLogs was called (or CONSTELLATION_E2E_KEEP_LOGS is set). Safe to call more than once.
func (c *Cluster) Close() error {
	var errs []error
	c.closeOnce.Do(func() {
		unregisterLive(c)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		errs = append(errs, removeRun(ctx, c.RunID))
		errs = append(errs, unmountDisks(c.Dir))
		if c.Dir != "" && !c.keepLogs() {
			_ = os.RemoveAll(c.Dir)
		}
	})
	return errors.Join(errs...)
}

var keepMu sync.Mutex
var keep = map[*Cluster]bool{}

// KeepLogs makes Close leave c.Dir (the node logs) in place, for a failed test.
func (c *Cluster) KeepLogs() {
	keepMu.Lock()
	defer keepMu.Unlock()
	keep[c] = true
}

func (c *Cluster) keepLogs() bool {
	keepMu.Lock()
	defer keepMu.Unlock()
	return keep[c] || os.Getenv("CONSTELLATION_E2E_KEEP_LOGS") != ""
}

// errCrashLoop stops polling: the agent exited again and again.
type errCrashLoop struct{ exits int }

func (e errCrashLoop) Error() string {
	return fmt.Sprintf("the agent exited %d times since the node started", e.exits)
}

// poll calls f every interval until it returns nil or max passes; then it returns fail(last error).
func poll(ctx context.Context, max, interval time.Duration, f func() error, fail func(error) error) error {
	deadline := time.Now().Add(max)
	var err error
	for {
		if err = f(); err == nil {
			return nil
		}
		var crash errCrashLoop
		if time.Now().After(deadline) || errors.As(err, &crash) {
			return fail(err)
		}
		select {
		case <-ctx.Done():
			return fail(errors.Join(ctx.Err(), err))
		case <-time.After(interval):
		}
	}
}

// getJSON fetches url into v.
func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

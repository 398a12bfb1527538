package doctor

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/nodeapi"
)

// Local gathers one node's inputs through its functions and runs the node's checks. A nil
// function means the thing is not there (Docker disabled, no Cloudflare, no mesh), which each
// check judges itself. Every probe gets Timeout.
type Local struct {
	Node    string
	Version string
	// Clock stamps the diagnostics and dates the Traefik polls and certificates: the Now of a
	// k8s.io/utils/clock PassiveClock (any of them fits; this package links no module but
	// pkg/nodeapi, deps_test.go). Default the system clock.
	Clock interface{ Now() time.Time }
	// Timeout bounds each probe. Default 3s.
	Timeout time.Duration

	// DockerHost names the engine in messages. Docker pings it and returns the API version;
	// nil: --docker.disabled.
	DockerHost string
	Docker     func(ctx context.Context) (version string, err error)
	// Ports are the agent's listeners (Port.Err is filled in by dialling each over TCP with Dial).
	Ports []Port
	// Dial dials an address. Default a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DataDir is --dataDir; Statfs measures its file system. Default: the OS's statfs.
	DataDir string
	Statfs  func(path string) (DiskUsage, error)
	// Raft is the node's raft view; nil function or nil result: the in-memory store.
	Raft func() *nodeapi.RaftInfo
	// Gossip is the node's gossip view; Nodes lists the cluster's nodes (the Node objects).
	Gossip func() nodeapi.GossipInfo
	Nodes  func(ctx context.Context) ([]string, error)
	// LB: the node is a load balancer (label role=lb), so a Traefik must poll it. Polls lists
	// who polled the provider endpoint; PollStale is when a poll is too old (default
	// DefaultPollStale).
	LB        bool
	Polls     func() []Poll
	PollStale time.Duration
	// Cloudflare checks the token and looks the zones up; nil: DNS not configured.
	Cloudflare func(ctx context.Context) (zones []Zone, tokenErr error)
	// MeshDNS queries the mesh name server and says where and what it asked; nil: mesh disabled.
	MeshDNS func(ctx context.Context) (addr, query string, err error)
	// Certs are the certificates in use.
	Certs func() []Cert
}

// Run gathers the inputs (concurrently, each within Timeout) and returns the node's diagnostics.
func (l Local) Run(ctx context.Context) nodeapi.Diagnostics {
	if l.Clock == nil {
		l.Clock = systemClock{}
	}
	if l.Timeout <= 0 {
		l.Timeout = 3 * time.Second
	}
	if l.Dial == nil {
		l.Dial = (&net.Dialer{}).DialContext
	}
	if l.Statfs == nil {
		l.Statfs = Statfs
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[int][]nodeapi.Check{} // by slot, so the order is fixed
	)
	slot := 0
	run := func(f func(ctx context.Context) []nodeapi.Check) {
		i := slot
		slot++
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, l.Timeout)
			defer cancel()
			cs := f(pctx)
			mu.Lock()
			results[i] = cs
			mu.Unlock()
		}()
	}
	run(func(ctx context.Context) []nodeapi.Check {
		if l.Docker == nil {
			return []nodeapi.Check{Docker(true, "", "", nil)}
		}
		v, err := l.Docker(ctx)
		return []nodeapi.Check{Docker(false, l.DockerHost, v, err)}
	})
	run(func(ctx context.Context) []nodeapi.Check {
		ports := append([]Port(nil), l.Ports...)
		for i := range ports {
			if ports[i].Address == "" {
				continue
			}
			c, err := l.Dial(ctx, "tcp", dialable(ports[i].Address))
			if err == nil {
				_ = c.Close()
			}
			ports[i].Err = err
		}
		return Ports(ports)
	})
	run(func(context.Context) []nodeapi.Check {
		u, err := l.Statfs(l.DataDir)
		return []nodeapi.Check{Disk(l.DataDir, u, err)}
	})
	var raft *nodeapi.RaftInfo
	if l.Raft != nil {
		raft = l.Raft()
	}
	run(func(context.Context) []nodeapi.Check { return []nodeapi.Check{Raft(l.Node, raft)} })
	var g nodeapi.GossipInfo
	if l.Gossip != nil {
		g = l.Gossip()
	}
	run(func(ctx context.Context) []nodeapi.Check {
		var nodes []string
		if l.Nodes != nil {
			ns, err := l.Nodes(ctx)
			if err != nil {
				return []nodeapi.Check{check("gossip", Warn, "cannot list the cluster's nodes: "+err.Error(), "see the raft line")}
			}
			nodes = ns
		}
		return []nodeapi.Check{Gossip(g, nodes)}
	})
	run(func(context.Context) []nodeapi.Check {
		var polls []Poll
		if l.Polls != nil {
			polls = l.Polls()
		}
		return []nodeapi.Check{TraefikPolls(l.Clock.Now(), l.LB, l.PollStale, polls)}
	})
	run(func(ctx context.Context) []nodeapi.Check {
		if l.Cloudflare == nil {
			return []nodeapi.Check{Cloudflare(false, nil, nil)}
		}
		zones, terr := l.Cloudflare(ctx)
		return []nodeapi.Check{Cloudflare(true, terr, zones)}
	})
	run(func(ctx context.Context) []nodeapi.Check {
		if l.MeshDNS == nil {
			return []nodeapi.Check{MeshDNS(true, "", "", nil)}
		}
		addr, q, err := l.MeshDNS(ctx)
		return []nodeapi.Check{MeshDNS(false, addr, q, err)}
	})
	run(func(context.Context) []nodeapi.Check {
		if l.Certs == nil {
			return nil
		}
		return Certificates(l.Clock.Now(), l.Certs())
	})
	wg.Wait()
	d := nodeapi.Diagnostics{Node: l.Node, Version: l.Version, Raft: raft, Gossip: g, Checks: []nodeapi.Check{}}
	for i := range slot {
		d.Checks = append(d.Checks, results[i]...)
	}
	d.Time = l.Clock.Now()
	return d
}

// dialable turns a listen address (":7481", "0.0.0.0:7481") into one to dial on this host.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// errNoStatfs is Statfs's error where the OS has none.
var errNoStatfs = errors.New("statfs: not supported on this OS")

// systemClock is Local's default Clock (k8s.io/utils/clock.RealClock's Now, without the module).
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

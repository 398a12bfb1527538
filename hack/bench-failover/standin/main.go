// Command standin is a stand-in for constellation-agent in hack/bench-failover that runs only
// pkg/gossip, with the agent's gossip defaults, and serves GET /debug/observed on --api.address
// as the agent does: it measures the gossip layer without the rest of the agent. It accepts the
// agent's flags that bench-failover passes and ignores the others. --join takes a member's API
// address, as the agent's does: the stand-in reads the member's gossip address from its
// /debug/observed and joins it.
//
// The encryption key comes from $BENCH_GOSSIP_KEY (base64; bench-failover sets one per run),
// standing in for the agent's authenticated join that hands the key over. It listens on
// 127.0.0.1 only and is for measurements, not for use.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/observed"
)

func main() {
	fs := flag.NewFlagSet("standin", flag.ContinueOnError)
	name := fs.String("node.name", "", "node name")
	api := fs.String("api.address", "127.0.0.1:7480", "HTTP address for /debug/observed")
	gossipAddr := fs.String("gossip.address", "127.0.0.1:7482", "gossip bind address")
	join := fs.String("join", "", "API address of a member")
	advertise := fs.String("node.advertiseAddress", "127.0.0.1", "advertise IP")
	var args []string
	for _, a := range os.Args[1:] {
		if k := strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0]; fs.Lookup(k) != nil {
			args = append(args, a)
		}
	}
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if err := run(*name, *api, *gossipAddr, *join, *advertise); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

func run(name, api, gossipAddr, join, advertise string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	key, err := gossip.DecodeKey(os.Getenv("BENCH_GOSSIP_KEY"))
	if err != nil {
		return fmt.Errorf("$BENCH_GOSSIP_KEY: %w", err)
	}
	cfg := gossip.DefaultConfig()
	cfg.NodeName, cfg.BindAddress, cfg.AdvertiseAddress = name, gossipAddr, advertise
	cfg.APIAddress, cfg.EncryptionKey, cfg.Version = api, key, "standin"
	set := observed.NewSet()
	cfg.Set, cfg.Logger = set, log
	g, err := gossip.New(cfg)
	if err != nil {
		return err
	}
	defer g.Shutdown()
	ln, err := net.Listen("tcp", api)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/observed" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Nodes    []observed.Node    `json:"nodes"`
			Replicas []observed.Replica `json:"replicas"`
		}{set.Nodes(), set.Replicas()})
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	if join != "" {
		if err := joinThrough(g, join); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	_ = g.Leave(time.Second)
	return nil
}

// joinThrough reads the gossip addresses of the member at api and joins them.
func joinThrough(g *gossip.Gossip, api string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		addrs, err := gossipAddrs(api)
		if err == nil && len(addrs) > 0 {
			if _, err = g.Join(addrs); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("join through %s: %v", api, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func gossipAddrs(api string) ([]string, error) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + api + "/debug/observed")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Nodes []observed.Node `json:"nodes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var out []string
	for _, n := range body.Nodes {
		if n.Alive && n.Gossip != "" {
			out = append(out, n.Gossip)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no live member listed")
	}
	return out, nil
}

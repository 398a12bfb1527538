package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/tailscale"
)

// resolveTailscale turns --node.advertiseAddress=tailscale into this node's Tailscale IPv4 and
// each --join=tailscale:TAG into the API addresses of the online peers tagged tag:TAG (their
// Tailscale IPv4 and this node's API port: every member listens on the same), in name order.
// It asks the local tailscaled once, waiting up to --tailscale.wait for it to be connected.
//
// A node that already holds a store does not need --join (it restarts its raft member): when
// discovery fails there, it says so and starts without. The advertise address is always
// needed.
func (a *Agent) resolveTailscale() error {
	cfg := a.cfg
	if !cfg.UsesTailscale() {
		return nil
	}
	tc := tailscale.New(cfg.Tailscale.Socket)
	st, err := waitTailscale(tc, cfg.Tailscale.Wait)
	if cfg.Node.AdvertiseAddress == config.AdvertiseTailscale {
		if err != nil {
			return fmt.Errorf("--node.advertiseAddress=tailscale: %w", err)
		}
		ip, err := st.SelfIPv4()
		if err != nil {
			return fmt.Errorf("--node.advertiseAddress=tailscale: %w", err)
		}
		cfg.Node.AdvertiseAddress = ip.String()
		a.log.Info("advertising this node's Tailscale address", "address", ip, "tailscale", st.Version)
	}
	var join []string
	var errs []error
	for _, j := range cfg.Join {
		if !config.IsTailscaleJoin(j) {
			join = append(join, j)
			continue
		}
		addrs, derr := discoverJoin(st, err, config.TailscaleTag(j), cfg.API.Address)
		if derr != nil {
			errs = append(errs, fmt.Errorf("--join=%s: %w", j, derr))
			continue
		}
		a.log.Info("discovered members through Tailscale", "tag", config.TailscaleTag(j), "join", strings.Join(addrs, ","))
		join = append(join, addrs...)
	}
	if len(errs) > 0 {
		if fileExists(filepath.Join(cfg.DataDir, raftDBFile)) {
			a.log.Warn("Tailscale discovery failed; this node holds a store and restarts without --join", "err", errors.Join(errs...))
		} else {
			return errors.Join(errs...)
		}
	}
	cfg.Join = dedupe(join)
	return nil
}

// discoverJoin is the API addresses of the peers tagged tag, from st (or statusErr).
func discoverJoin(st *tailscale.Status, statusErr error, tag, apiAddress string) ([]string, error) {
	if statusErr != nil {
		return nil, statusErr
	}
	_, port, err := net.SplitHostPort(apiAddress)
	if err != nil || port == "0" {
		return nil, fmt.Errorf("needs a fixed --api.address port (every member's API listens on it), got %q", apiAddress)
	}
	peers, err := st.PeersWithTag(tag)
	if err != nil {
		return nil, err
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("no online peer tagged %s in the tailnet (%d peers seen): tag the members (tailscale up --advertise-tags=%s), or start the first node of the cluster without --join", tag, len(st.Peer), tag)
	}
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		out = append(out, net.JoinHostPort(p.IP.String(), port))
	}
	return out, nil
}

// waitTailscale reads tailscaled's status until it is connected or wait has passed (tailscaled
// may be starting alongside the agent); it returns the last status and error.
func waitTailscale(tc *tailscale.Client, wait time.Duration) (*tailscale.Status, error) {
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := tc.Status(ctx)
		cancel()
		if err == nil {
			err = st.Connected()
		}
		if err == nil || errors.Is(err, tailscale.ErrAccessDenied) || time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			return st, nil
		}
		time.Sleep(time.Second)
	}
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

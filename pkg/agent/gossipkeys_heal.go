package agent

import (
	"context"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/store"
)

// healGossipKeyring is for a node whose gossip joins keep failing: it may have been down while
// the cluster rotated its key. It fetches the keyring from a member's API (authenticated by the
// cluster secret) and adopts it when it differs from ours. It returns the gossip peers the
// member knows (nil when no member answered).
func (a *Agent) healGossipKeyring(ctx context.Context) []string {
	if a.clusterTok == "" {
		return nil
	}
	apis := append([]string(nil), a.cfg.Join...)
	if objs, _, err := a.store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale()); err == nil {
		for _, o := range objs {
			n := o.(*v1.Node)
			if n.Metadata.Name != a.cfg.Node.Name && n.Status.Addresses.API != "" {
				apis = append(apis, n.Status.Addresses.API)
			}
		}
	}
	if len(apis) == 0 {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := a.fetchGossipInfo(fctx, apis)
	if err != nil {
		a.log.Warn("gossip join failing; could not fetch the cluster's gossip keyring", "err", err)
		return nil
	}
	kr, err := info.keyring()
	if err != nil {
		a.log.Warn("gossip join failing; the member sent a bad gossip keyring", "err", err)
		return nil
	}
	if strings.Join(kr.Fingerprints(), ",") == strings.Join(a.gossip.Keyring().Fingerprints(), ",") {
		return info.Peers
	}
	if err := a.adoptGossipKeyring(kr); err != nil {
		a.log.Warn("adopt the cluster's gossip keyring", "err", err)
		return nil
	}
	a.log.Info("adopted the cluster's gossip keyring (the key was rotated while this node was away)", "primary", gossip.Fingerprint(kr.Primary()))
	return info.Peers
}

// gossipKeyWatchInterval is how often a running agent checks that it is not alone in gossip
// while the store knows other nodes (a variable for tests).
var gossipKeyWatchInterval = 15 * time.Second

// watchGossipKeyring heals a node that is running but alone in gossip while other members are
// known (Node objects, --join): it may have been cut off (a partition) while the cluster rotated its key, and
// memberlist's own reconnects cannot get through with the old key. It tries a plain join first;
// when that fails too it fetches the cluster's keyring (healGossipKeyring) and joins again.
func (a *Agent) watchGossipKeyring(ctx context.Context) {
	t := time.NewTicker(gossipKeyWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.gossip.NumMembers() > 1 {
			continue
		}
		if peers := a.gossipPeers(ctx); len(peers) > 0 {
			if n, _ := a.gossip.Join(peers); n > 0 {
				continue
			}
		}
		// healGossipKeyring does nothing without another member's API address to ask (a
		// one-node cluster).
		if fresh := a.healGossipKeyring(ctx); len(fresh) > 0 {
			if n, err := a.gossip.Join(fresh); n > 0 {
				a.log.Info("rejoined gossip", "contacted", n)
			} else {
				a.log.Warn("alone in gossip and the join failed", "peers", fresh, "err", err)
			}
		}
	}
}

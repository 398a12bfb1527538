package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
)

// clusterTokenFile holds the generated cluster token of a cluster bootstrapped without an API
// token (a loopback-only, one-node setup).
const clusterTokenFile = "cluster.token"

// clusterToken is what peers and joiners authenticate with: the API token when there is one,
// else a token generated at bootstrap and kept in the data dir. A node can only join with the
// cluster's token, so --join needs --api.tokenFile.
func (a *Agent) clusterToken() (string, error) {
	if a.token != "" {
		return a.token, nil
	}
	if len(a.cfg.Join) > 0 {
		return "", errors.New("--join: needs --api.tokenFile holding the cluster's token (the same file on every node)")
	}
	path := filepath.Join(a.cfg.DataDir, clusterTokenFile)
	if tok, err := config.ReadSecretFile(path); err == nil {
		return tok, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cluster token: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cluster token: %w", err)
	}
	return tok, nil
}

// openRaft opens (or bootstraps, or joins) the replicated store.
func (a *Agent) openRaft() error {
	tok, err := a.clusterToken()
	if err != nil {
		return err
	}
	a.clusterTok = tok
	rc := raftstore.DefaultConfig()
	rc.NodeName = a.cfg.Node.Name
	rc.DataDir = a.cfg.DataDir
	rc.RaftAddress = a.cfg.Raft.Address
	rc.AdvertiseRaftAddress = advertised(a.cfg.Raft.Address, a.cfg.Node.AdvertiseAddress)
	rc.ClusterToken = tok
	rc.Join = a.cfg.Join
	if len(a.cfg.Join) > 0 {
		a.log.Info("joining the cluster", "through", strings.Join(a.cfg.Join, ","))
	}
	st, err := raftstore.Open(rc, a.log, a.reg)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	a.raft = st
	a.store = st
	return nil
}

// advertised turns a listen address into one peers can dial: an unspecified host becomes the
// node's advertise address. A port of 0 is left for the component to resolve once bound.
func advertised(listen, advertise string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = advertise
	}
	if port == "0" {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// gossipInfo is what a joining node needs to enter gossip: the encryption key and where members
// listen. It is served to holders of the cluster token only.
type gossipInfo struct {
	Key   string   `json:"key"`
	Peers []string `json:"peers"`
}

// serveGossipInfo is GET /cluster/gossip.
func (a *Agent) serveGossipInfo(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if a.clusterTok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(a.clusterTok)) != 1 {
		http.Error(w, `{"error":"bad cluster token"}`, http.StatusUnauthorized)
		return
	}
	info := gossipInfo{Key: gossip.EncodeKey(a.gossipKey)}
	for _, n := range a.view.Nodes() {
		if n.Alive && n.Gossip != "" {
			info.Peers = append(info.Peers, n.Gossip)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// fetchGossipInfo asks the --join members for the gossip key and peers.
func (a *Agent) fetchGossipInfo(ctx context.Context) (*gossipInfo, error) {
	var errs []error
	for _, j := range a.cfg.Join {
		base := j
		if !strings.Contains(base, "://") {
			base = "http://" + base
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/cluster/gossip", nil)
		req.Header.Set("Authorization", "Bearer "+a.clusterTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: %s: %s", j, resp.Status, strings.TrimSpace(string(b))))
			continue
		}
		var info gossipInfo
		if err := json.Unmarshal(b, &info); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", j, err))
			continue
		}
		return &info, nil
	}
	return nil, fmt.Errorf("gossip key from --join members: %w", errors.Join(errs...))
}

// gossipPeers returns the gossip addresses recorded in Node objects (other than ours), so a
// restarted node rejoins gossip without --join.
func (a *Agent) gossipPeers(ctx context.Context) []string {
	objs, _, err := a.store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range objs {
		n := o.(*v1.Node)
		if n.Metadata.Name != a.cfg.Node.Name && n.Status.Addresses.Gossip != "" {
			out = append(out, n.Status.Addresses.Gossip)
		}
	}
	return out
}

// joinGossip contacts peers until one answers, retrying in the background: a node restarted
// while the others are down joins them when they return.
func (a *Agent) joinGossip(ctx context.Context, peers []string) error {
	for attempt := 0; ; attempt++ {
		if len(peers) == 0 {
			peers = a.gossipPeers(ctx)
		}
		if len(peers) > 0 {
			n, err := a.gossip.Join(peers)
			if n > 0 {
				a.log.Info("joined gossip", "contacted", n)
				return nil
			}
			if attempt%10 == 0 {
				a.log.Warn("gossip join failed, retrying", "peers", peers, "err", err)
			}
		} else if attempt == 0 {
			return nil // alone: the first node of a cluster
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		peers = nil
	}
}

// raftRoleOf is the status controller's view of a node's role in the replicated store.
func (a *Agent) raftRoleOf(node string) (v1.RaftRole, bool) {
	for _, m := range a.raft.Members() {
		if m.Name == node {
			return m.Role, true
		}
	}
	return v1.RaftNone, true
}

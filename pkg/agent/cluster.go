package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/store"
	"github.com/constellation-sh/constellation/pkg/store/raftstore"
)

// openRaft opens (or bootstraps, or joins) the replicated store.
func (a *Agent) openRaft() error {
	rc := raftstore.DefaultConfig()
	rc.NodeName = a.cfg.Node.Name
	rc.DataDir = a.cfg.DataDir
	rc.RaftAddress = a.cfg.Raft.Address
	rc.AdvertiseRaftAddress = advertised(a.cfg.Raft.Address, a.cfg.Node.AdvertiseAddress)
	rc.ClusterToken = a.clusterTok
	// Mutual TLS between members, always: the raft address listens on every interface by
	// default, and Secret values travel in raft entries.
	rc.ServerTLS, rc.ClientTLS = a.certs.PeerServerTLS(), a.certs.ClientTLS("")
	rc.JoinClient = a.peerClient()
	rc.Seed = a.restoreSeed() // --restore (snapshot.go)
	for _, j := range a.cfg.Join {
		rc.Join = append(rc.Join, a.joinBase(j))
	}
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

// gossipInfo is what a joining node needs to enter gossip: the encryption keys and where members
// listen. It is served to holders of the cluster token only. Key is the primary (what agents
// before key rotation read); Keys is the whole keyring, the primary first.
type gossipInfo struct {
	Key   string   `json:"key"`
	Keys  []string `json:"keys,omitempty"`
	Peers []string `json:"peers"`
}

// keyring decodes the keys a member sent (untrusted input).
func (info *gossipInfo) keyring() (gossip.Keyring, error) {
	return gossip.KeyringFromText(info.Key, info.Keys)
}

// serveGossipInfo is GET /cluster/gossip.
func (a *Agent) serveGossipInfo(w http.ResponseWriter, r *http.Request) {
	if !a.authorizedPeer(r) {
		writeClusterError(w, http.StatusUnauthorized, "bad cluster token")
		return
	}
	kr := a.gossip.Keyring()
	info := gossipInfo{Key: gossip.EncodeKey(kr.Primary())}
	for _, k := range kr.Keys {
		info.Keys = append(info.Keys, gossip.EncodeKey(k))
	}
	for _, n := range a.view.Nodes() {
		if n.Alive && n.Gossip != "" {
			info.Peers = append(info.Peers, n.Gossip)
		}
	}
	writeJSON(w, info)
}

// fetchGossipInfo asks members' APIs (the --join addresses at first) for the gossip keyring and
// peers, until one answers.
func (a *Agent) fetchGossipInfo(ctx context.Context, apis []string) (*gossipInfo, error) {
	var errs []error
	for _, api := range apis {
		var info gossipInfo
		if err := a.peerRequest(ctx, http.MethodGet, api, "/cluster/gossip", nil, &info); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", api, err))
			continue
		}
		return &info, nil
	}
	return nil, fmt.Errorf("gossip keyring from members: %w", errors.Join(errs...))
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
			return nil // alone: the first node of a cluster (watchGossipKeyring keeps an eye)
		}
		// Joins keep failing: ask a member's API for the keyring and the peers. The cluster may
		// have rotated the gossip key while this node was away.
		if attempt%10 == 2 {
			if fresh := a.healGossipKeyring(ctx); len(fresh) > 0 {
				peers = fresh
				continue
			}
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

// MemberRemovalPath is where `ctl node remove` asks an agent to take a node out of the cluster.
const MemberRemovalPath = "/cluster/members/{name}"

// memberRemoval is the answer of DELETE /cluster/members/{name}.
type memberRemoval struct {
	Name string `json:"name"`
	// RemovedMember: the node was a raft member and no longer is.
	RemovedMember bool `json:"removedMember"`
	// DeletedNode: its Node object was deleted.
	DeletedNode bool `json:"deletedNode"`
}

// serveRemoveMember is DELETE /cluster/members/{name}[?force=true]: it removes a node that is
// gone for good from raft, then deletes its Node object, so that a replacement can join under
// the same name with a fresh data dir. It is authenticated like the rest of the API. The raft
// store refuses a removal that would break quorum, the last voter, the member answering, and a
// live node unless force is set; a node that is not a raft member only loses its Node object
// (under the same liveness check).
func (a *Agent) serveRemoveMember(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !v1.IsDNSLabel(name) {
		writeClusterError(w, http.StatusBadRequest, fmt.Sprintf("nodes/%s: name is not a DNS label", name))
		return
	}
	force := r.URL.Query().Get("force") == "true"
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	alive := func(node string) bool {
		for _, n := range a.view.Nodes() {
			if n.Name == node {
				return n.Alive
			}
		}
		return false
	}
	out := memberRemoval{Name: name}
	member := false
	if a.raft != nil {
		err := a.raft.RemoveMember(ctx, name, raftstore.RemoveOptions{Alive: alive, Force: force})
		switch {
		case err == nil:
			out.RemovedMember, member = true, true
			a.log.Warn("removed a member from the cluster", "node", name, "force", force)
		case errors.Is(err, store.ErrNotFound):
		case errors.Is(err, raftstore.ErrRemoveRefused):
			msg := err.Error()
			if re := (*raftstore.RemoveRefusedError)(nil); errors.As(err, &re) {
				msg = re.Reason
			}
			writeClusterError(w, http.StatusConflict, fmt.Sprintf("nodes/%s: removal refused: %s", name, msg))
			return
		case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed), ctx.Err() != nil:
			writeClusterError(w, http.StatusServiceUnavailable, fmt.Sprintf("nodes/%s: remove from raft: %v", name, err))
			return
		default:
			writeClusterError(w, http.StatusInternalServerError, fmt.Sprintf("nodes/%s: remove from raft: %v", name, err))
			return
		}
	}
	if !member && name == a.cfg.Node.Name {
		writeClusterError(w, http.StatusConflict, fmt.Sprintf("nodes/%s: removal refused: it is the node answering this request; send it to another node (--server)", name))
		return
	}
	if !member && alive(name) && !force {
		writeClusterError(w, http.StatusConflict, fmt.Sprintf("nodes/%s: removal refused: the node is alive (gossip sees it); stop it first, or use --force", name))
		return
	}
	_, err := a.store.Delete(ctx, v1.KindNode, name, "")
	switch {
	case err == nil:
		out.DeletedNode = true
	case errors.Is(err, store.ErrNotFound):
		if !member {
			writeClusterError(w, http.StatusNotFound, fmt.Sprintf("nodes/%s: neither a raft member nor a Node object", name))
			return
		}
	default:
		code := http.StatusInternalServerError
		if errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			code = http.StatusServiceUnavailable
		}
		// The raft member may be gone already: say so, the operator retries for the Node.
		writeClusterError(w, code, fmt.Sprintf("nodes/%s: removed from raft: %v; delete Node object: %v", name, member, err))
		return
	}
	// This agent forgets it at once; the others prune it from gossip as a departed node.
	a.gossip.Forget(name)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeClusterError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

package agent

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/store"
)

// Gossip key rotation, Serf's way: install the new key on every member, then make it primary
// everywhere, then remove the old keys everywhere. Every member decrypts with every key it has,
// so between the steps each pair of members can still talk. The peer paths below change one
// member's keyring and are authenticated by the cluster (peer) secret; GossipRotatePath, an
// admin API route, coordinates a rotation across the cluster (`ctl cluster rotate-gossip-key`).
const (
	// GossipKeysPath: GET lists this member's key fingerprints; POST {"key": base64} installs one.
	GossipKeysPath = "/cluster/gossip/keys"
	// GossipPrimaryKeyPath: PUT {"fingerprint": fp} makes an installed key primary.
	GossipPrimaryKeyPath = "/cluster/gossip/keys/primary"
	// GossipKeyPath: DELETE removes a key that is not primary (absent: nothing to do).
	GossipKeyPath = "/cluster/gossip/keys/{fingerprint}"
	// GossipRotatePath: POST rotates the cluster's gossip key, streaming progress.
	GossipRotatePath = "/cluster/gossip/rotate"
)

// gossipKeys serialises changes to this node's keyring with their persistence, and rotations.
type gossipKeys struct {
	mu sync.Mutex // held while the keyring changes and is saved
	// rotating is held by the one rotation this node coordinates at a time.
	rotating sync.Mutex
}

// keyringStatus is a member's keyring as the peer paths show it: fingerprints, never keys.
type keyringStatus struct {
	Node    string   `json:"node"`
	Primary string   `json:"primary"`
	Keys    []string `json:"keys"`
}

// keyError is a keyring change refused or failed, with the HTTP status the peer path answers.
type keyError struct {
	code int
	msg  string
}

func (e *keyError) Error() string { return e.msg }

// authorizedPeer reports whether r carries the cluster (peer) secret.
func (a *Agent) authorizedPeer(r *http.Request) bool {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return a.clusterTok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.clusterTok)) == 1
}

func (a *Agent) gossipKeyStatus() keyringStatus {
	kr := a.gossip.Keyring()
	return keyringStatus{Node: a.cfg.Node.Name, Primary: gossip.Fingerprint(kr.Primary()), Keys: kr.Fingerprints()}
}

// changeKeyring applies f to this node's keyring and saves the result in the data dir, so that a
// restart keeps it.
func (a *Agent) changeKeyring(f func(kr gossip.Keyring) error) error {
	a.gkeys.mu.Lock()
	defer a.gkeys.mu.Unlock()
	if err := f(a.gossip.Keyring()); err != nil {
		return err
	}
	if err := gossip.SaveKeyring(a.cfg.DataDir, a.gossip.Keyring()); err != nil {
		return &keyError{http.StatusInternalServerError, fmt.Sprintf("node %s: %v", a.cfg.Node.Name, err)}
	}
	return nil
}

func keyByFingerprint(kr gossip.Keyring, fp string) []byte {
	for _, k := range kr.Keys {
		if gossip.Fingerprint(k) == fp {
			return k
		}
	}
	return nil
}

func (a *Agent) installGossipKey(k []byte) error {
	return a.changeKeyring(func(kr gossip.Keyring) error {
		if kr.Has(k) {
			return nil
		}
		if len(kr.Keys) >= gossip.MaxKeys {
			return &keyError{http.StatusConflict, fmt.Sprintf("node %s: gossip keyring already holds %d keys; finish or rerun a rotation to remove old ones", a.cfg.Node.Name, len(kr.Keys))}
		}
		return a.gossip.InstallKey(k)
	})
}

func (a *Agent) useGossipKey(fp string) error {
	return a.changeKeyring(func(kr gossip.Keyring) error {
		k := keyByFingerprint(kr, fp)
		if k == nil {
			return &keyError{http.StatusNotFound, fmt.Sprintf("node %s: gossip key %s: not installed", a.cfg.Node.Name, fp)}
		}
		return a.gossip.UseKey(k)
	})
}

func (a *Agent) removeGossipKey(fp string) error {
	return a.changeKeyring(func(kr gossip.Keyring) error {
		k := keyByFingerprint(kr, fp)
		switch {
		case k == nil:
			return nil // removed already
		case bytes.Equal(k, kr.Primary()):
			return &keyError{http.StatusConflict, fmt.Sprintf("node %s: gossip key %s: it is the primary key; make another key primary first", a.cfg.Node.Name, fp)}
		}
		return a.gossip.RemoveKey(k)
	})
}

// adoptGossipKeyring replaces this node's keyring with the cluster's (a node that missed a
// rotation).
func (a *Agent) adoptGossipKeyring(kr gossip.Keyring) error {
	return a.changeKeyring(func(gossip.Keyring) error { return a.gossip.AdoptKeyring(kr) })
}

// serveGossipKeys is GET GossipKeysPath.
func (a *Agent) serveGossipKeys(w http.ResponseWriter, r *http.Request) {
	if !a.authorizedPeer(r) {
		writeClusterError(w, http.StatusUnauthorized, "bad cluster token")
		return
	}
	writeJSON(w, a.gossipKeyStatus())
}

// serveInstallGossipKey is POST GossipKeysPath {"key": base64}.
func (a *Agent) serveInstallGossipKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Key string `json:"key"`
	}
	if !a.readPeerBody(w, r, &body) {
		return
	}
	k, err := gossip.DecodeKey(body.Key)
	if err != nil {
		writeClusterError(w, http.StatusBadRequest, "key: "+err.Error())
		return
	}
	a.answerKeyChange(w, a.installGossipKey(k), "installed", gossip.Fingerprint(k))
}

// serveUseGossipKey is PUT GossipPrimaryKeyPath {"fingerprint": fp}.
func (a *Agent) serveUseGossipKey(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Fingerprint string `json:"fingerprint"`
	}
	if !a.readPeerBody(w, r, &body) {
		return
	}
	a.answerKeyChange(w, a.useGossipKey(body.Fingerprint), "made primary", body.Fingerprint)
}

// serveRemoveGossipKey is DELETE GossipKeyPath.
func (a *Agent) serveRemoveGossipKey(w http.ResponseWriter, r *http.Request) {
	if !a.authorizedPeer(r) {
		writeClusterError(w, http.StatusUnauthorized, "bad cluster token")
		return
	}
	fp := r.PathValue("fingerprint")
	a.answerKeyChange(w, a.removeGossipKey(fp), "removed", fp)
}

func (a *Agent) readPeerBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if !a.authorizedPeer(r) {
		writeClusterError(w, http.StatusUnauthorized, "bad cluster token")
		return false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeClusterError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

func (a *Agent) answerKeyChange(w http.ResponseWriter, err error, what, fp string) {
	if err != nil {
		code := http.StatusInternalServerError
		if ke := (*keyError)(nil); errors.As(err, &ke) {
			code = ke.code
		}
		writeClusterError(w, code, err.Error())
		return
	}
	a.log.Info("gossip key "+what, "fingerprint", fp)
	writeJSON(w, a.gossipKeyStatus())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// peerRequest is every agent-to-agent HTTP call: the API of the member at api (host:port or a
// URL), authenticated by the cluster secret. in, when not nil, is sent as JSON; a 2xx answer is
// decoded into out when not nil; another status is an error carrying the member's message.
func (a *Agent) peerRequest(ctx context.Context, method, api, path string, in, out any) error {
	base := a.joinBase(api)
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+a.clusterTok)
	resp, err := a.peerClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// keyMember is one member's keyring as the rotation drives it: this node in process, the others
// through the peer paths.
type keyMember interface {
	Name() string
	Keyring(ctx context.Context) (keyringStatus, error)
	Install(ctx context.Context, key []byte) error
	Use(ctx context.Context, fingerprint string) error
	Remove(ctx context.Context, fingerprint string) error
}

type localKeyMember struct{ a *Agent }

var _ keyMember = localKeyMember{}

func (m localKeyMember) Name() string { return m.a.cfg.Node.Name }
func (m localKeyMember) Keyring(context.Context) (keyringStatus, error) {
	return m.a.gossipKeyStatus(), nil
}
func (m localKeyMember) Install(_ context.Context, k []byte) error { return m.a.installGossipKey(k) }
func (m localKeyMember) Use(_ context.Context, fp string) error    { return m.a.useGossipKey(fp) }
func (m localKeyMember) Remove(_ context.Context, fp string) error { return m.a.removeGossipKey(fp) }

type peerKeyMember struct {
	a    *Agent
	name string
	api  string
}

var _ keyMember = peerKeyMember{}

func (m peerKeyMember) Name() string { return m.name }
func (m peerKeyMember) Keyring(ctx context.Context) (keyringStatus, error) {
	var st keyringStatus
	err := m.a.peerRequest(ctx, http.MethodGet, m.api, GossipKeysPath, nil, &st)
	return st, err
}
func (m peerKeyMember) Install(ctx context.Context, k []byte) error {
	return m.a.peerRequest(ctx, http.MethodPost, m.api, GossipKeysPath, map[string]string{"key": gossip.EncodeKey(k)}, nil)
}
func (m peerKeyMember) Use(ctx context.Context, fp string) error {
	return m.a.peerRequest(ctx, http.MethodPut, m.api, GossipPrimaryKeyPath, map[string]string{"fingerprint": fp}, nil)
}
func (m peerKeyMember) Remove(ctx context.Context, fp string) error {
	return m.a.peerRequest(ctx, http.MethodDelete, m.api, strings.Replace(GossipKeyPath, "{fingerprint}", fp, 1), nil, nil)
}

// rotationEvent is one line of the rotation's progress stream (newline-delimited JSON).
type rotationEvent struct {
	// Step: "plan", "skip", "install", "use", "remove", "done" or "error".
	Step    string   `json:"step"`
	Node    string   `json:"node,omitempty"`
	Done    int      `json:"done,omitempty"`
	Total   int      `json:"total,omitempty"`
	Members []string `json:"members,omitempty"`
	// Primary is the new key's fingerprint (plan, done).
	Primary string `json:"primary,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// skippedMember is a node the rotation does not reach: not alive in gossip.
type skippedMember struct {
	Name, State string
}

// rotateGossipKey rotates the gossip key of members to key. A member that fails the install step
// stops the rotation before anything is switched; past that point every member holds both keys,
// so a later failure leaves gossip working and a second rotation finishes the job: its last step
// removes every key but the new one, leftovers of an interrupted rotation included.
func rotateGossipKey(ctx context.Context, members []keyMember, skipped []skippedMember, key []byte, emit func(rotationEvent)) error {
	fp := gossip.Fingerprint(key)
	total := len(members)
	names := make([]string, total)
	for i, m := range members {
		names[i] = m.Name()
	}
	emit(rotationEvent{Step: "plan", Total: total, Members: names, Primary: fp})
	for _, s := range skipped {
		emit(rotationEvent{Step: "skip", Node: s.Name, Message: fmt.Sprintf("not alive in gossip (%s): it adopts the new keyring from a member when it rejoins", s.State)})
	}
	call := func(m keyMember, f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return f(cctx)
	}
	for i, m := range members {
		if err := call(m, func(c context.Context) error { return m.Install(c, key) }); err != nil {
			return fmt.Errorf("install the new gossip key on node %s: %w; nothing was switched (the old key is still primary everywhere): run the rotation again once %s answers, or remove it with `ctl node remove`", m.Name(), err, m.Name())
		}
		emit(rotationEvent{Step: "install", Node: m.Name(), Done: i + 1, Total: total})
	}
	for i, m := range members {
		if err := call(m, func(c context.Context) error { return m.Use(c, fp) }); err != nil {
			return fmt.Errorf("make the new gossip key primary on node %s: %w; every member holds both keys, so gossip still flows: run the rotation again", m.Name(), err)
		}
		emit(rotationEvent{Step: "use", Node: m.Name(), Done: i + 1, Total: total})
	}
	var errs []error
	for i, m := range members {
		err := call(m, func(c context.Context) error {
			st, err := m.Keyring(c)
			if err != nil {
				return err
			}
			// From the last key backwards (see gossip.AdoptKeyring).
			for j := len(st.Keys) - 1; j >= 0; j-- {
				if st.Keys[j] == fp {
					continue
				}
				if err := m.Remove(c, st.Keys[j]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("remove the old gossip keys on node %s: %w", m.Name(), err))
			continue
		}
		emit(rotationEvent{Step: "remove", Node: m.Name(), Done: i + 1, Total: total})
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w; the new key is primary everywhere: run the rotation again to remove the old ones", errors.Join(errs...))
	}
	emit(rotationEvent{Step: "done", Primary: fp, Total: total})
	return nil
}

// keyMembers returns the members a rotation must reach (alive in gossip) and those it skips:
// every node named by gossip, by a Node object or by the raft membership.
func (a *Agent) keyMembers(ctx context.Context) ([]keyMember, []skippedMember, error) {
	type info struct {
		alive bool
		state string
		api   string
	}
	nodes := map[string]*info{}
	get := func(name string) *info {
		if nodes[name] == nil {
			nodes[name] = &info{state: "unknown to gossip"}
		}
		return nodes[name]
	}
	objs, _, err := a.store.List(ctx, v1.KindNode, v1.Selector{}, store.Stale())
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	for _, o := range objs {
		n := o.(*v1.Node)
		get(n.Metadata.Name).api = n.Status.Addresses.API
	}
	if a.raft != nil {
		for _, m := range a.raft.Members() {
			get(m.Name)
		}
	}
	for _, n := range a.view.Nodes() {
		in := get(n.Name)
		in.alive, in.state = n.Alive, n.State
		if n.API != "" {
			in.api = n.API
		}
	}
	names := make([]string, 0, len(nodes))
	for name := range nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	members := []keyMember{localKeyMember{a}}
	var skipped []skippedMember
	for _, name := range names {
		in := nodes[name]
		switch {
		case name == a.cfg.Node.Name:
		case !in.alive:
			skipped = append(skipped, skippedMember{name, in.state})
		case in.api == "":
			return nil, nil, fmt.Errorf("nodes/%s: alive in gossip but advertises no API address: the rotation cannot reach it", name)
		default:
			members = append(members, peerKeyMember{a: a, name: name, api: in.api})
		}
	}
	return members, skipped, nil
}

// serveRotateGossipKey is POST GossipRotatePath (admin): it rotates the cluster's gossip key and
// streams progress as newline-delimited rotationEvents, the last one "done" or "error". The
// rotation runs to its end even if the client goes away.
func (a *Agent) serveRotateGossipKey(w http.ResponseWriter, r *http.Request) {
	if !a.gkeys.rotating.TryLock() {
		writeClusterError(w, http.StatusConflict, "a gossip key rotation is already running on this node")
		return
	}
	defer a.gkeys.rotating.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Minute)
	defer cancel()
	members, skipped, err := a.keyMembers(ctx)
	if err != nil {
		writeClusterError(w, http.StatusServiceUnavailable, "rotate gossip key: "+err.Error())
		return
	}
	key, err := gossip.NewKey()
	if err != nil {
		writeClusterError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	emit := func(ev rotationEvent) {
		a.log.Info("gossip key rotation", "step", ev.Step, "node", ev.Node, "done", ev.Done, "total", ev.Total, "message", ev.Message)
		_ = enc.Encode(ev) // a client gone away does not stop the rotation
		if flusher != nil {
			flusher.Flush()
		}
	}
	if err := rotateGossipKey(ctx, members, skipped, key, emit); err != nil {
		a.log.Warn("gossip key rotation failed", "err", err)
		_ = enc.Encode(rotationEvent{Step: "error", Error: err.Error()})
	}
}

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

// loadGossipKeyring returns the keyring gossip starts with and saves it in the data dir:
//   - the data dir's gossip.keyring, once there is one (rotations change it);
//   - else --gossip.keyFile's key, as before key rotation (it seeds the keyring);
//   - else a legacy gossip.key;
//   - else, for a joining node, the cluster's keyring from the authenticated join path;
//   - else a new key (a bootstrapping node).
func (a *Agent) loadGossipKeyring() (gossip.Keyring, error) {
	dir := a.cfg.DataDir
	var fileKey []byte
	if a.cfg.Gossip.KeyFile != "" {
		s, err := config.ReadSecretFile(a.cfg.Gossip.KeyFile)
		if err != nil {
			return gossip.Keyring{}, fmt.Errorf("--gossip.keyFile: %w", err)
		}
		if fileKey, err = gossip.DecodeKey(s); err != nil {
			return gossip.Keyring{}, fmt.Errorf("--gossip.keyFile: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, gossip.KeyringFile)); err == nil {
		kr, err := gossip.LoadKeyring(dir)
		if err != nil {
			return gossip.Keyring{}, fmt.Errorf("gossip keyring: %w", err)
		}
		if fileKey != nil && !kr.Has(fileKey) {
			a.log.Warn("--gossip.keyFile holds a key that is not in the data dir's gossip keyring (rotated with `ctl cluster rotate-gossip-key`?): using the keyring",
				"keyFile", a.cfg.Gossip.KeyFile, "primary", gossip.Fingerprint(kr.Primary()))
		}
		return kr, nil
	}
	legacy, lerr := gossip.LoadKey(dir)
	if lerr != nil && !errors.Is(lerr, os.ErrNotExist) {
		return gossip.Keyring{}, fmt.Errorf("gossip key: %w", lerr)
	}
	var kr gossip.Keyring
	if legacy == nil && len(a.cfg.Join) > 0 {
		// A joining node gets the cluster's keyring through the authenticated join path.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		info, err := a.fetchGossipInfo(ctx, a.cfg.Join)
		cancel()
		if err != nil {
			return gossip.Keyring{}, err
		}
		if kr, err = info.keyring(); err != nil {
			return gossip.Keyring{}, fmt.Errorf("gossip keyring from the cluster: %w", err)
		}
		a.joinPeers = info.Peers
	}
	switch {
	case fileKey != nil:
		kr = gossip.Keyring{Keys: [][]byte{fileKey}}
	case legacy != nil:
		kr = gossip.Keyring{Keys: [][]byte{legacy}}
	case len(kr.Keys) == 0:
		k, err := gossip.NewKey()
		if err != nil {
			return gossip.Keyring{}, err
		}
		kr = gossip.Keyring{Keys: [][]byte{k}}
	}
	if err := gossip.SaveKeyring(dir, kr); err != nil {
		return gossip.Keyring{}, err
	}
	return kr, nil
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

package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/store"
)

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

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/observed"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeKeyMember is a member's keyring with memberlist's rules (a key installed twice is one key,
// only an installed key can be primary, the primary cannot be removed) and injected failures.
type fakeKeyMember struct {
	name   string
	keys   [][]byte // primary first
	failOn string   // "install", "use" or "remove": that call fails
	calls  []string
}

var _ keyMember = (*fakeKeyMember)(nil)

func (m *fakeKeyMember) Name() string { return m.name }
func (m *fakeKeyMember) Keyring(context.Context) (keyringStatus, error) {
	kr := gossip.Keyring{Keys: m.keys}
	return keyringStatus{Node: m.name, Primary: gossip.Fingerprint(kr.Primary()), Keys: kr.Fingerprints()}, nil
}
func (m *fakeKeyMember) fail(op string) error {
	m.calls = append(m.calls, op)
	if m.failOn == op {
		return errors.New("connection refused")
	}
	return nil
}
func (m *fakeKeyMember) Install(_ context.Context, k []byte) error {
	if err := m.fail("install"); err != nil {
		return err
	}
	if !(gossip.Keyring{Keys: m.keys}).Has(k) {
		m.keys = append(m.keys, k)
	}
	return nil
}
func (m *fakeKeyMember) Use(_ context.Context, fp string) error {
	if err := m.fail("use"); err != nil {
		return err
	}
	for i, k := range m.keys {
		if gossip.Fingerprint(k) == fp {
			rest := append(append([][]byte{}, m.keys[:i]...), m.keys[i+1:]...)
			m.keys = append([][]byte{k}, rest...)
			return nil
		}
	}
	return fmt.Errorf("%s: not installed", fp)
}
func (m *fakeKeyMember) Remove(_ context.Context, fp string) error {
	if err := m.fail("remove"); err != nil {
		return err
	}
	for i, k := range m.keys {
		if gossip.Fingerprint(k) == fp {
			if i == 0 {
				return errors.New("removing the primary key is not allowed")
			}
			m.keys = append(append([][]byte{}, m.keys[:i]...), m.keys[i+1:]...)
		}
	}
	return nil
}

func newTestKey(t *testing.T) []byte {
	t.Helper()
	k, err := gossip.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fingerprints(keys ...[]byte) string {
	return strings.Join(gossip.Keyring{Keys: keys}.Fingerprints(), ",")
}

func runRotation(t *testing.T, ms []*fakeKeyMember, skipped []skippedMember, key []byte) ([]string, error) {
	t.Helper()
	members := make([]keyMember, len(ms))
	for i, m := range ms {
		members[i] = m
	}
	var events []string
	err := rotateGossipKey(context.Background(), members, skipped, key, func(ev rotationEvent) {
		events = append(events, fmt.Sprintf("%s %s %d/%d", ev.Step, ev.Node, ev.Done, ev.Total))
	})
	return events, err
}

func TestRotateGossipKeyCoordinator(t *testing.T) {
	old := newTestKey(t)
	fresh := func() []*fakeKeyMember {
		return []*fakeKeyMember{{name: "n1", keys: [][]byte{old}}, {name: "n2", keys: [][]byte{old}}, {name: "n3", keys: [][]byte{old}}}
	}

	t.Run("every member ends with the new key only", func(t *testing.T) {
		ms, key := fresh(), newTestKey(t)
		events, err := runRotation(t, ms, []skippedMember{{"n4", "dead"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		want := "plan  0/3|skip n4 0/0|install n1 1/3|install n2 2/3|install n3 3/3|use n1 1/3|use n2 2/3|use n3 3/3|remove n1 1/3|remove n2 2/3|remove n3 3/3|done  0/3"
		if got := strings.Join(events, "|"); got != want {
			t.Fatalf("events:\n%s\nwant\n%s", got, want)
		}
		for _, m := range ms {
			if got := fingerprints(m.keys...); got != fingerprints(key) {
				t.Fatalf("%s keys %s, want only the new %s", m.name, got, fingerprints(key))
			}
		}
	})

	t.Run("an unreachable member stops it before anything is switched", func(t *testing.T) {
		ms, key := fresh(), newTestKey(t)
		ms[1].failOn = "install"
		_, err := runRotation(t, ms, nil, key)
		if err == nil || !strings.Contains(err.Error(), "node n2") || !strings.Contains(err.Error(), "nothing was switched") {
			t.Fatalf("err = %v, want one naming n2 and saying nothing was switched", err)
		}
		for _, m := range ms {
			if !bytes.Equal(m.keys[0], old) {
				t.Fatalf("%s primary switched after a failed install", m.name)
			}
			for _, c := range m.calls {
				if c != "install" {
					t.Fatalf("%s got %q after a failed install", m.name, c)
				}
			}
		}
		if len(ms[2].calls) != 0 {
			t.Fatalf("n3 got %v after n2 failed", ms[2].calls)
		}
	})

	t.Run("a second rotation after an interrupted one finishes cleanly", func(t *testing.T) {
		// Interrupted after n1 switched to k2: n1 primary k2, n2 has both with k1 primary, n3
		// only got k2 installed.
		k2 := newTestKey(t)
		ms := []*fakeKeyMember{{name: "n1", keys: [][]byte{k2, old}}, {name: "n2", keys: [][]byte{old, k2}}, {name: "n3", keys: [][]byte{old, k2}}}
		k3 := newTestKey(t)
		if _, err := runRotation(t, ms, nil, k3); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if got := fingerprints(m.keys...); got != fingerprints(k3) {
				t.Fatalf("%s keys %s, want only %s", m.name, got, fingerprints(k3))
			}
		}
	})

	t.Run("a failed removal leaves the new key primary and is reported", func(t *testing.T) {
		ms, key := fresh(), newTestKey(t)
		ms[2].failOn = "remove"
		_, err := runRotation(t, ms, nil, key)
		if err == nil || !strings.Contains(err.Error(), "node n3") || !strings.Contains(err.Error(), "run the rotation again") {
			t.Fatalf("err = %v, want one naming n3", err)
		}
		for _, m := range ms {
			if !bytes.Equal(m.keys[0], key) {
				t.Fatalf("%s primary is not the new key", m.name)
			}
		}
		if got := fingerprints(ms[0].keys...); got != fingerprints(key) {
			t.Fatalf("n1 keys %s: the others are still cleaned", got)
		}
	})
}

// freeAddr returns a loopback address with a port that was free a moment ago: the agents here
// need fixed API ports, since a port-0 API is not advertised in gossip.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func keyringOf(a *Agent) string { return strings.Join(a.gossip.Keyring().Fingerprints(), ",") }

func aliveIn(a *Agent, names ...string) bool {
	alive := map[string]bool{}
	for _, n := range a.View().Nodes() {
		alive[n.Name] = n.Alive
	}
	for _, n := range names {
		if !alive[n] {
			return false
		}
	}
	return true
}

// TestRotateGossipKeyAcrossAgents rotates the key of three whole agents with one of them stopped:
// the live two switch, the stopped one is skipped and reported, and when it comes back with only
// the old key it fetches the new keyring from a member and rejoins gossip by itself. A second
// rotation then reaches all three.
func TestRotateGossipKeyAcrossAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents with raft stores; run without -short")
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("cluster-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type node struct {
		dir, api, raft string
	}
	nodes := map[string]node{}
	for _, n := range []string{"n1", "n2", "n3"} {
		nodes[n] = node{dir: filepath.Join(t.TempDir(), n), api: freeAddr(t), raft: freeAddr(t)}
	}
	opts := func(name string) func(*config.Config) {
		return func(c *config.Config) {
			c.Store.Memory = false
			c.API.TokenFile = tokenFile
			c.DataDir, c.API.Address, c.Raft.Address = nodes[name].dir, nodes[name].api, nodes[name].raft
			if name != "n1" {
				c.Join = []string{nodes["n1"].api}
			}
		}
	}
	_, a1 := startAgentStoppable(t, "n1", opts("n1"))
	_, a2 := startAgentStoppable(t, "n2", opts("n2"))
	stop3, a3 := startAgentStoppable(t, "n3", opts("n3"))
	eventually(t, "all three alive in gossip", func() bool { return aliveIn(a1, "n1", "n2", "n3") && aliveIn(a3, "n1", "n2") })
	// A restarted agent finds its gossip peers in the Node objects of its store.
	eventually(t, "gossip addresses in every Node object on n3", func() bool { return len(a3.gossipPeers(context.Background())) == 2 })
	old := keyringOf(a1)
	if keyringOf(a2) != old || keyringOf(a3) != old {
		t.Fatalf("keyrings before rotation: %s %s %s", old, keyringOf(a2), keyringOf(a3))
	}
	if _, err := os.Stat(filepath.Join(nodes["n2"].dir, gossip.KeyringFile)); err != nil {
		t.Fatalf("joiner's keyring file: %v", err)
	}

	// The peer paths want the cluster secret.
	for _, tok := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a1.APIAddress()+GossipKeysPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET %s with token %q: %d, want 401", GossipKeysPath, tok, resp.StatusCode)
		}
	}

	stop3()
	eventually(t, "n3 not alive in n1's gossip view", func() bool { return !aliveIn(a1, "n3") })
	c1, err := client.New(client.Config{Server: a1.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	done, err := c1.RotateGossipKey(context.Background(), func(ev client.GossipKeyRotationEvent) {
		steps = append(steps, fmt.Sprintf("%s %s %d/%d", ev.Step, ev.Node, ev.Done, ev.Total))
	})
	if err != nil {
		t.Fatalf("rotate: %v (steps %v)", err, steps)
	}
	want := "plan  0/2|skip n3 0/0|install n1 1/2|install n2 2/2|use n1 1/2|use n2 2/2|remove n1 1/2|remove n2 2/2|done  0/2"
	if got := strings.Join(steps, "|"); got != want {
		t.Fatalf("steps:\n%s\nwant\n%s", got, want)
	}
	for _, a := range []*Agent{a1, a2} {
		if got := keyringOf(a); got != done.Primary {
			t.Fatalf("%s keyring %s, want only the new key %s", a.cfg.Node.Name, got, done.Primary)
		}
		kr, err := gossip.LoadKeyring(a.cfg.DataDir)
		if err != nil || strings.Join(kr.Fingerprints(), ",") != done.Primary {
			t.Fatalf("%s saved keyring %v %v, want %s", a.cfg.Node.Name, kr.Fingerprints(), err, done.Primary)
		}
	}
	if !aliveIn(a2, "n1") || !aliveIn(a1, "n2") {
		t.Fatal("n1 and n2 lost each other in the rotation")
	}

	// n3 returns on its data dir, which holds only the old key.
	if kr, _ := gossip.LoadKeyring(nodes["n3"].dir); strings.Join(kr.Fingerprints(), ",") != old {
		t.Fatalf("n3's saved keyring %v, want the old key", kr.Fingerprints())
	}
	_, a3 = startAgentStoppable(t, "n3", opts("n3"))
	eventuallyWithin(t, 60*time.Second, "n3 back in gossip with the new key", func() bool {
		return keyringOf(a3) == done.Primary && aliveIn(a1, "n3") && aliveIn(a3, "n1", "n2")
	})
	if kr, _ := gossip.LoadKeyring(nodes["n3"].dir); strings.Join(kr.Fingerprints(), ",") != done.Primary {
		t.Fatalf("n3's saved keyring after healing %v, want %s", kr.Fingerprints(), done.Primary)
	}

	// A second rotation, through another member, reaches all three.
	c2, err := client.New(client.Config{Server: a2.APIAddress(), Token: "cluster-secret"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "n2 sees n3 alive", func() bool { return aliveIn(a2, "n3") })
	again, err := c2.RotateGossipKey(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Agent{a1, a2, a3} {
		if got := keyringOf(a); got != again.Primary || again.Primary == done.Primary {
			t.Fatalf("%s keyring after the second rotation %s, want %s", a.cfg.Node.Name, got, again.Primary)
		}
	}
}

// TestRunningNodeCutOffDuringRotationHeals: a node that keeps running but missed a rotation (it
// was partitioned away, so the coordinator skipped it) is alone in gossip with the old key; its
// watch fetches the new keyring from a member and it rejoins without a restart.
func TestRunningNodeCutOffDuringRotationHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents with raft stores; run without -short")
	}
	defer func(d time.Duration) { gossipKeyWatchInterval = d }(gossipKeyWatchInterval)
	gossipKeyWatchInterval = 200 * time.Millisecond
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("cluster-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := freeAddr(t)
	opts := func(name string) func(*config.Config) {
		return func(c *config.Config) {
			c.Store.Memory = false
			c.API.TokenFile = tokenFile
			c.API.Address = freeAddr(t)
			if name == "n1" {
				c.API.Address = first
			} else {
				c.Join = []string{first}
			}
		}
	}
	_, a1 := startAgentStoppable(t, "n1", opts("n1"))
	_, a2 := startAgentStoppable(t, "n2", opts("n2"))
	_, a3 := startAgentStoppable(t, "n3", opts("n3"))
	eventually(t, "all three alive in gossip", func() bool { return aliveIn(a1, "n1", "n2", "n3") && aliveIn(a3, "n1", "n2") })

	// The rotation reaches n1 and n2 only, as when n3 was cut off.
	key := newTestKey(t)
	if err := rotateGossipKey(context.Background(), []keyMember{localKeyMember{a1}, localKeyMember{a2}}, []skippedMember{{"n3", "dead"}}, key, func(rotationEvent) {}); err != nil {
		t.Fatal(err)
	}
	want := gossip.Fingerprint(key)
	eventuallyWithin(t, 60*time.Second, "n3 on the new key, back in everyone's gossip", func() bool {
		return keyringOf(a3) == want && aliveIn(a1, "n3") && aliveIn(a2, "n3") && aliveIn(a3, "n1", "n2")
	})
}

// TestGossipKeyPeerPaths drives one agent's keyring through its peer paths: the answers, the
// refusals, and the keyring saved in the data dir after each change.
func TestGossipKeyPeerPaths(t *testing.T) {
	dir := t.TempDir()
	old := newTestKey(t)
	gc := gossip.DefaultConfig()
	gc.NodeName, gc.BindAddress, gc.AdvertiseAddress, gc.EncryptionKey = "n1", "127.0.0.1:0", "127.0.0.1", old
	logger := slog.New(slog.DiscardHandler)
	gc.Set, gc.Logger, gc.Registerer = observed.NewSet(), logger, prometheus.NewRegistry()
	g, err := gossip.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown() })
	cfg := config.Default()
	cfg.Node.Name, cfg.DataDir = "n1", dir
	a := &Agent{cfg: cfg, log: logger, gossip: g, clusterTok: "peer-secret"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+GossipKeysPath, a.serveGossipKeys)
	mux.HandleFunc("POST "+GossipKeysPath, a.serveInstallGossipKey)
	mux.HandleFunc("PUT "+GossipPrimaryKeyPath, a.serveUseGossipKey)
	mux.HandleFunc("DELETE "+GossipKeyPath, a.serveRemoveGossipKey)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	call := func(tok, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	saved := func() string {
		t.Helper()
		kr, err := gossip.LoadKeyring(dir)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(kr.Fingerprints(), ",")
	}
	fpOld, k := gossip.Fingerprint(old), newTestKey(t)
	fpNew := gossip.Fingerprint(k)
	for _, tt := range []struct {
		tok, method, path, body string
		code                    int
		want                    string // in the answer
		saved                   string // the data dir's keyring after the call, "" unchecked
	}{
		{"", "GET", GossipKeysPath, "", 401, "bad cluster token", ""},
		{"wrong", "POST", GossipKeysPath, `{"key":"` + gossip.EncodeKey(k) + `"}`, 401, "bad cluster token", ""},
		{"wrong", "DELETE", "/cluster/gossip/keys/" + fpOld, "", 401, "bad cluster token", ""},
		{"peer-secret", "GET", GossipKeysPath, "", 200, `"keys":["` + fpOld + `"]`, ""},
		{"peer-secret", "POST", GossipKeysPath, `{"key":"c2hvcnQ="}`, 400, "must be 32 bytes", ""},
		{"peer-secret", "POST", GossipKeysPath, `not json`, 400, "request body", ""},
		{"peer-secret", "POST", GossipKeysPath, `{"key":"` + gossip.EncodeKey(k) + `"}`, 200, `"primary":"` + fpOld + `","keys":["` + fpOld + `","` + fpNew + `"]`, fpOld + "," + fpNew},
		{"peer-secret", "POST", GossipKeysPath, `{"key":"` + gossip.EncodeKey(k) + `"}`, 200, `"keys":["` + fpOld + `","` + fpNew + `"]`, fpOld + "," + fpNew},
		{"peer-secret", "PUT", GossipPrimaryKeyPath, `{"fingerprint":"0000000000000000"}`, 404, "node n1: gossip key 0000000000000000: not installed", ""},
		{"peer-secret", "PUT", GossipPrimaryKeyPath, `{"fingerprint":"` + fpNew + `"}`, 200, `"primary":"` + fpNew + `"`, fpNew + "," + fpOld},
		{"peer-secret", "DELETE", "/cluster/gossip/keys/" + fpNew, "", 409, "it is the primary key", ""},
		{"peer-secret", "DELETE", "/cluster/gossip/keys/" + fpOld, "", 200, `"keys":["` + fpNew + `"]`, fpNew},
		{"peer-secret", "DELETE", "/cluster/gossip/keys/" + fpOld, "", 200, `"keys":["` + fpNew + `"]`, fpNew},
	} {
		code, body := call(tt.tok, tt.method, tt.path, tt.body)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Fatalf("%s %s %.40s: %d %s, want %d with %q", tt.method, tt.path, tt.body, code, body, tt.code, tt.want)
		}
		if strings.Contains(body, gossip.EncodeKey(k)) || strings.Contains(body, gossip.EncodeKey(old)) {
			t.Fatalf("%s %s answered a key: %s", tt.method, tt.path, body)
		}
		if tt.saved != "" && saved() != tt.saved {
			t.Fatalf("%s %s: saved keyring %s, want %s", tt.method, tt.path, saved(), tt.saved)
		}
	}
	if got := strings.Join(g.Keyring().Fingerprints(), ","); got != fpNew {
		t.Fatalf("gossip keyring %s, want %s", got, fpNew)
	}
}

// TestLoadGossipKeyring: the keyring an agent starts with, data dirs from before rotation
// included.
func TestLoadGossipKeyring(t *testing.T) {
	k1, k2 := newTestKey(t), newTestKey(t)
	keyFile := filepath.Join(t.TempDir(), "gossip-key")
	if err := os.WriteFile(keyFile, []byte(gossip.EncodeKey(k2)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(dir, keyFile string) string {
		t.Helper()
		cfg := config.Default()
		cfg.Node.Name, cfg.DataDir, cfg.Gossip.KeyFile = "n1", dir, keyFile
		a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler)}
		kr, err := a.loadGossipKeyring()
		if err != nil {
			t.Fatal(err)
		}
		saved, err := gossip.LoadKeyring(dir)
		if err != nil || fingerprints(saved.Keys...) != fingerprints(kr.Keys...) {
			t.Fatalf("saved keyring %v %v, want %s", saved.Fingerprints(), err, fingerprints(kr.Keys...))
		}
		if _, err := os.Stat(filepath.Join(dir, gossip.KeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("legacy gossip.key still there: %v", err)
		}
		return fingerprints(kr.Keys...)
	}
	legacy := func(k []byte) string {
		dir := t.TempDir()
		if err := gossip.SaveKey(dir, k); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	if got := load(legacy(k1), ""); got != fingerprints(k1) {
		t.Fatalf("legacy gossip.key: %s, want %s", got, fingerprints(k1))
	}
	// Before rotation --gossip.keyFile overrode gossip.key (which held an unused generated key).
	if got := load(legacy(k1), keyFile); got != fingerprints(k2) {
		t.Fatalf("keyFile with a legacy gossip.key: %s, want the file's %s", got, fingerprints(k2))
	}
	// Once there is a keyring, it wins: a rotation since the file was written stands.
	dir := t.TempDir()
	if err := gossip.SaveKeyring(dir, gossip.Keyring{Keys: [][]byte{k1}}); err != nil {
		t.Fatal(err)
	}
	if got := load(dir, keyFile); got != fingerprints(k1) {
		t.Fatalf("keyring and a stale keyFile: %s, want the keyring's %s", got, fingerprints(k1))
	}
	fresh := t.TempDir()
	first := load(fresh, "")
	if first == "" || load(fresh, "") != first {
		t.Fatalf("a new data dir: %q, then %q; want one generated key, kept", first, load(fresh, ""))
	}
}

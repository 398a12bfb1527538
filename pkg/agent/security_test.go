package agent

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/client"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/spec"
)

const (
	testAdminToken    = "admin-token-0123456789abcdef"
	testReadToken     = "read-token-0123456789abcdef"
	testProviderToken = "provider-token-0123456789abcdef"
)

// writeTokens writes a token file with one token of each scope.
func writeTokens(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "tokens")
	body := "# name scope token\n" +
		"ops admin " + testAdminToken + "\n" +
		"grafana read " + testReadToken + "\n" +
		"traefik provider " + testProviderToken + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsAgent is the config of an agent on the replicated store whose API speaks TLS.
func tlsAgent(tokens string, join ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.Store.Memory = false
		c.API.TokenFile = tokens
		c.API.TLS = true
		c.Join = join
	}
}

// insecureHTTP talks TLS without checking the server: the matrix is about authentication.
var insecureHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test of the auth layer only
}}

// TestAuthMatrix sends every mounted route every kind of credential and checks the answer:
// 401 without a valid API token, 403 with a token whose scope is too small, neither with a
// scope that suffices. The peer secret is not an API credential, and an API token is not a
// peer credential.
func TestAuthMatrix(t *testing.T) {
	dir := t.TempDir()
	a, _ := startAgent(t, "n1", tlsAgent(writeTokens(t, dir)))
	peer := a.clusterTok
	if peer == "" || peer == testAdminToken {
		t.Fatalf("peer secret %q: want a generated secret distinct from the API tokens", peer)
	}
	creds := []struct{ name, bearer string }{
		{"none", ""}, {"wrong", "not-a-token"}, {"read", testReadToken},
		{"provider", testProviderToken}, {"admin", testAdminToken}, {"peer", peer},
	}
	// need: "" public, "peer", or the least API scope.
	routes := []struct{ route, need string }{
		{"GET /healthz", ""},
		{"GET /readyz", ""},
		{"GET /cluster/ca?nonce=00112233445566778899aabbccddeeff", ""},
		{"GET /metrics", "read"},
		{"GET /apis/v1/services", "read"},
		{"GET /apis/v1/services?watch=true", "read"},
		{"GET /apis/v1/secrets/x", "read"},
		{"GET /apis/v1/secrets/x?reveal=true", "admin"},
		{"GET /api/routes", "read"},
		{"GET /debug/observed", "read"},
		{"GET /api/mesh", "read"},
		{"GET /api/providers/traefik", "provider"},
		{"PUT /apis/v1/services/x", "admin"},
		{"DELETE /apis/v1/services/x", "admin"},
		{"PUT /apis/v1/services/x/status", "admin"},
		{"POST /apis/v1/services/x/undo", "admin"},
		{"GET /debug/pprof/", "admin"},
		{"GET /debug/pprof/cmdline", "admin"},
		{"GET /cluster/credentials", "admin"},
		{"DELETE /cluster/members/nosuchnode", "admin"},
		{"POST /cluster/gossip/rotate", "admin"},
		{"POST /cluster/datakey/rotate", "admin"},
		{"GET /cluster/snapshot", "admin"}, // every object, sealed Secrets too (snapshot.go)
		{"GET /cluster/gossip", "peer"},
		{"POST /cluster/join", "peer"},
		{"GET /cluster/gossip/keys", "peer"},
		{"POST /cluster/gossip/keys", "peer"},
		{"PUT /cluster/gossip/keys/primary", "peer"},
		{"DELETE /cluster/gossip/keys/0011223344556677", "peer"},
		// The per-node API (nodeapi.go): n1 runs no Docker, so a served request is a 503.
		{"GET /node/n1/logs?service=x&index=0", "read"},
		{"GET /node/n1/volumes", "read"},
		{"POST /node/n1/exec?service=x&index=0&cmd=true", "admin"},
		{"GET /node/n1/volumes/v/archive?service=x&index=0", "admin"},
		{"PUT /node/n1/volumes/v/archive?service=x&index=0", "admin"},
		{"GET /node/elsewhere/logs?service=x&index=0", "read"},
	}
	allowed := func(need, cred string) (ok bool, denial int) {
		switch need {
		case "":
			return true, 0
		case "peer":
			return cred == "peer", http.StatusUnauthorized
		}
		switch cred {
		case "none", "wrong", "peer":
			return false, http.StatusUnauthorized
		case "admin":
			return true, 0
		}
		return cred == need, http.StatusForbidden
	}
	for _, r := range routes {
		for _, c := range creds {
			m, p, _ := strings.Cut(r.route, " ")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, _ := http.NewRequestWithContext(ctx, m, a.APIURL()+p, strings.NewReader("{}"))
			if c.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+c.bearer)
			}
			resp, err := insecureHTTP.Do(req)
			if err != nil {
				cancel()
				t.Fatalf("%s as %s: %v", r.route, c.name, err)
			}
			resp.Body.Close()
			cancel()
			ok, denial := allowed(r.need, c.name)
			got := resp.StatusCode
			switch {
			case ok && (got == http.StatusUnauthorized || got == http.StatusForbidden):
				t.Errorf("%-45s as %-8s: %d, want it served", r.route, c.name, got)
			case ok && got == http.StatusNotFound && r.need == "":
				t.Errorf("%-45s as %-8s: 404: the route is not mounted", r.route, c.name)
			case !ok && got != denial:
				t.Errorf("%-45s as %-8s: %d, want %d", r.route, c.name, got, denial)
			}
		}
	}
}

// TestJoinOverTLSNeedsAnAdminToken: an agent joins a cluster whose API speaks TLS with one
// step (--join and an admin token): it checks the CA by the proof over its token, receives the
// peer secret, the CA and the gossip key, and becomes a member over mutual TLS. A read token
// cannot join; a client trusts the API through the proof, and one with a wrong token gets no
// CA and sends nothing.
func TestJoinOverTLSNeedsAnAdminToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents; run without -short")
	}
	dir := t.TempDir()
	tokens := writeTokens(t, dir)
	a1, _ := startAgent(t, "n1", tlsAgent(tokens))

	// A read token cannot join: refused at once, with the reason.
	readOnly := filepath.Join(dir, "read-only")
	if err := os.WriteFile(readOnly, []byte("grafana read "+testReadToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Node.Name, cfg.DataDir = "n9", filepath.Join(t.TempDir(), "n9")
	cfg.API.Address, cfg.Raft.Address, cfg.Gossip.Address = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Docker.Disabled, cfg.API.TLS, cfg.API.TokenFile = true, true, readOnly
	cfg.Join = []string{a1.APIAddress()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Fatalf("joining with a read token: err = %v, want a refusal naming the admin token", err)
	}

	a2, _ := startAgent(t, "n2", tlsAgent(tokens, a1.APIAddress()))
	if a2.clusterTok != a1.clusterTok {
		t.Fatal("the joiner did not receive the cluster's peer secret")
	}
	if a2.CA().Fingerprint() != a1.CA().Fingerprint() {
		t.Fatalf("joiner's CA %s, cluster's %s", a2.CA().Fingerprint(), a1.CA().Fingerprint())
	}
	eventually(t, "n2 a raft member", func() bool {
		for _, m := range a1.raft.Members() {
			if m.Name == "n2" {
				return true
			}
		}
		return false
	})
	ctx := context.Background()
	c1, err := client.New(client.Config{Server: a1.APIURL(), Token: testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	sec := spec.Secret("db", map[string]string{"password": "hunter2-hunter2"})
	sec.Default()
	if _, err := c1.Put(ctx, sec, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Secret replicated to n2 over mutual TLS", func() bool {
		_, err := a2.Store().Get(ctx, v1.KindSecret, "db")
		return err == nil
	})
	if got := c1.CA(); got == nil || got.Equal(a1.CA().Certificate()) == false {
		t.Fatal("the client does not trust the cluster CA after the proof")
	}

	// A wrong token gets no CA: the request is never sent.
	bad, _ := client.New(client.Config{Server: a1.APIURL(), Token: "guess"})
	if _, err := bad.List(ctx, v1.KindService, ""); err == nil || !strings.Contains(err.Error(), "trust") {
		t.Fatalf("wrong token: err = %v, want a trust failure", err)
	}
	// A pinned fingerprint is trusted without a proof; a wrong pin is not.
	pinned, _ := client.New(client.Config{Server: a1.APIURL(), Token: testReadToken, CAFingerprint: a1.CA().Fingerprint()})
	if _, err := pinned.List(ctx, v1.KindService, ""); err != nil {
		t.Fatalf("pinned CA: %v", err)
	}
	wrongPin, _ := client.New(client.Config{Server: a1.APIURL(), Token: testReadToken, CAFingerprint: "sha256:" + strings.Repeat("ab", 32)})
	if _, err := wrongPin.List(ctx, v1.KindService, ""); err == nil {
		t.Fatal("a wrong pinned fingerprint was accepted")
	}
	// Plain HTTP to the TLS API is refused by the server.
	resp, err := http.Get("http://" + a1.APIAddress() + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the TLS API answered plain HTTP")
		}
	}
}

// TestTokenFileReloads: a token added to the file works without a restart, a removed one stops
// working, and a broken file keeps the tokens in force.
func TestTokenFileReloads(t *testing.T) {
	dir := t.TempDir()
	tokens := writeTokens(t, dir)
	a, _ := startAgent(t, "n1", func(c *config.Config) { c.API.TokenFile = tokens })
	get := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, a.APIURL()+"/apis/v1/services", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const fresh = "fresh-token-0123456789abcdef"
	if got := get(fresh); got != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", got)
	}
	if err := os.WriteFile(tokens, []byte("ops admin "+testAdminToken+"\nnew read "+fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	if got := get(fresh); got != http.StatusOK {
		t.Fatalf("added token after reload: %d", got)
	}
	if got := get(testReadToken); got != http.StatusUnauthorized {
		t.Fatalf("removed token after reload: %d", got)
	}
	// A broken file is refused and the tokens in force stay.
	if err := os.WriteFile(tokens, []byte("ops admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadTokens(); err == nil {
		t.Fatal("a malformed token file was accepted")
	}
	if got := get(fresh); got != http.StatusOK {
		t.Fatalf("token after a failed reload: %d", got)
	}
	// The poller picks up a change by itself.
	if err := os.WriteFile(tokens, []byte("ops admin "+testAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the poller reloading the file", func() bool { return get(fresh) == http.StatusUnauthorized })
}

// TestJoinedMemberNeverMintsACA: a member that joined and lost its CA certificate refuses to
// start, rather than create a CA that no peer trusts; with the file back it starts.
func TestJoinedMemberNeverMintsACA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts raft agents; run without -short")
	}
	tokens := writeTokens(t, t.TempDir())
	a1, _ := startAgent(t, "n1", tlsAgent(tokens))
	stop2, a2 := startAgentStoppable(t, "n2", tlsAgent(tokens, a1.APIAddress()))
	stop2()
	caPath := filepath.Join(a2.cfg.DataDir, "ca.crt")
	saved, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(caPath); err != nil {
		t.Fatal(err)
	}
	cfg := *a2.cfg
	cfg.API.Address, cfg.Raft.Address, cfg.Gossip.Address = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if _, err := New(&cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "cluster CA") {
		t.Fatalf("restart without ca.crt: err = %v, want a cluster CA error", err)
	}
	if _, err := os.Stat(caPath); err == nil {
		t.Fatal("a new CA was written")
	}
	if err := os.WriteFile(caPath, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	stop, _ := startAgentStoppable(t, "n2", func(c *config.Config) { *c = cfg })
	stop()
}

// TestTokensFromASecret: --api.tokenSecret adds the Secret's tokens, follows its changes, and
// until it is readable nobody is served as an anonymous admin.
func TestTokensFromASecret(t *testing.T) {
	a, _ := startAgent(t, "n1", func(c *config.Config) { c.API.TokenSecret = "api-tokens" })
	get := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, a.APIURL()+"/apis/v1/services", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(""); got != http.StatusUnauthorized {
		t.Fatalf("before the Secret exists: %d, want 401 (never anonymous admin)", got)
	}
	ctx := context.Background()
	sec := spec.Secret("api-tokens", map[string]string{"ci": "admin " + testAdminToken})
	sec.Default()
	if _, err := a.Store().Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Secret's token accepted", func() bool { return get(testAdminToken) == http.StatusOK })
	if got := get(""); got != http.StatusUnauthorized {
		t.Fatalf("no token: %d", got)
	}
	obj, err := a.Store().Get(ctx, v1.KindSecret, "api-tokens")
	if err != nil {
		t.Fatal(err)
	}
	upd := obj.(*v1.Secret)
	upd.Spec.Data = map[string]string{"grafana": "read " + testReadToken}
	if _, err := a.Store().Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rotated token accepted, the old refused", func() bool {
		return get(testReadToken) == http.StatusOK && get(testAdminToken) == http.StatusUnauthorized
	})
}

// A node without Docker runs no mesh data plane and says so at /api/mesh (read scope).
func TestMeshEndpointWithoutDataPlane(t *testing.T) {
	dir := t.TempDir()
	a, _ := startAgent(t, "n1", func(c *config.Config) { c.API.TokenFile = writeTokens(t, dir) })
	c, err := client.New(client.Config{Server: a.APIURL(), Token: testReadToken})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Mesh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Node != "n1" || v.Enabled || len(v.Listeners) != 0 {
		t.Fatalf("mesh view %+v, want n1 without a data plane", v)
	}
}

// A first node stopped after writing its peer secret but before its CA starts again and makes
// the CA, rather than refusing for ever.
func TestBootstrapResumesAfterSecretOnly(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "n1")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "cluster.secret"), []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := startAgent(t, "n1", func(c *config.Config) { c.DataDir = dataDir; c.Store.Memory = false })
	if a.clusterTok != "0123456789abcdef0123456789abcdef" || a.CA() == nil {
		t.Fatalf("peer secret %q, CA %v", a.clusterTok, a.CA())
	}
	if _, err := os.Stat(filepath.Join(dataDir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
}

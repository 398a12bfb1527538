package agent

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
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
	"github.com/constellation-sh/constellation/internal/atomicfile"
	"github.com/constellation-sh/constellation/pkg/auth"
	"github.com/constellation-sh/constellation/pkg/config"
	"github.com/constellation-sh/constellation/pkg/gossip"
	"github.com/constellation-sh/constellation/pkg/pki"
	"github.com/constellation-sh/constellation/pkg/store"
)

// The credentials of a member, in its data dir (see docs/security.md):
//
//   - cluster.secret (0600): the peer secret. Raft peers present it in their hello, members
//     present it to each other's peer endpoints, and the data keys are wrapped by a key derived
//     from it. It is not an API credential.
//   - ca.crt / ca.key (0644 / 0600): the cluster CA. Every member holds the key, so any member
//     can admit a joiner and renew its own certificate.
//   - node.crt / node.key (0600): this node's certificate, for mutual TLS between members and
//     for the API off loopback. Renewed in place before it expires.
//   - gossip.key (0600): memberlist's encryption key.
//
// A joining agent receives all of them from a member in one exchange, authenticated by an
// admin API token, after checking that the member's CA is the cluster's (a proof over the
// token, or --security.joinCAFingerprint).
const (
	clusterSecretFile = "cluster.secret"
	// legacyClusterTokenFile is where agents before separate credentials kept a generated
	// cluster token (a cluster bootstrapped without an API token).
	legacyClusterTokenFile = "cluster.token"
	raftDBFile             = "raft.db"
)

// CredentialsPath is where a joining agent fetches the cluster's credentials (admin scope).
const CredentialsPath = "/cluster/credentials"

// CAPath is where anyone may fetch the cluster CA with a proof over their token.
const CAPath = pki.CAProofPath

// credentials is what CredentialsPath answers.
type credentials struct {
	Bundle json.RawMessage `json:"bundle"`
	// Peers are gossip addresses of live members.
	Peers []string `json:"peers,omitempty"`
}

// loadTokens reads --api.tokenFile.
func (a *Agent) loadTokens() error {
	if a.cfg.API.TokenFile == "" {
		return nil
	}
	f, err := auth.OpenFile(a.cfg.API.TokenFile, a.log.With("component", "auth"))
	if err != nil {
		return fmt.Errorf("--api.tokenFile: %w", err)
	}
	a.tokens = f
	return nil
}

// apiTokens is the API's current token set: --api.tokenFile's and --api.tokenSecret's. Nil
// without either.
func (a *Agent) apiTokens() *auth.Set {
	var file *auth.Set
	if a.tokens != nil {
		file = a.tokens.Set()
	}
	a.secretTokensMu.Lock()
	defer a.secretTokensMu.Unlock()
	sec := a.secretTokens
	// Every authenticated request asks: merge (and hash) only when a source changed. Sets are
	// immutable and replaced on reload, so their pointers tell.
	if m := a.mergedTokens; m.file == file && m.sec == sec {
		return m.set
	}
	set, _ := auth.Merge(file, sec)
	a.mergedTokens = mergedTokens{file: file, sec: sec, set: set}
	return set
}

// mergedTokens caches apiTokens' merge of its two sources.
type mergedTokens struct{ file, sec, set *auth.Set }

// watchTokenSecret keeps the tokens of --api.tokenSecret, re-reading the Secret from the local
// replica every interval. A Secret that is missing or malformed keeps the tokens read before
// and says why once per change.
func (a *Agent) watchTokenSecret(ctx context.Context, interval time.Duration) error {
	name := a.cfg.API.TokenSecret
	lastRV, lastErr := "", ""
	for {
		obj, err := a.store.Get(ctx, v1.KindSecret, name, store.Stale())
		var msg string
		switch {
		case err != nil:
			msg = err.Error()
		default:
			sec := obj.(*v1.Secret)
			if rv := sec.Metadata.ResourceVersion; rv != lastRV {
				toks, perr := auth.ParseSecretTokens(sec.Spec.Data)
				if perr != nil {
					msg = perr.Error()
				} else {
					lastRV = rv
					set := auth.NewSet(toks)
					var file *auth.Set
					if a.tokens != nil {
						file = a.tokens.Set()
					}
					if _, dropped := auth.Merge(file, set); len(dropped) > 0 {
						a.log.Warn("tokens of the Secret left out: their name or secret is the token file's", "secret", name, "tokens", dropped)
					}
					a.secretTokensMu.Lock()
					a.secretTokens = set
					a.secretTokensMu.Unlock()
					a.log.Info("API tokens read from the Secret", "secret", name, "tokens", len(toks))
				}
			}
		}
		if msg != "" && msg != lastErr {
			a.log.Error("--api.tokenSecret not read; the tokens read before stay in force", "secret", name, "err", msg)
		}
		lastErr = msg
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// ReloadTokens re-reads --api.tokenFile (on SIGHUP). A bad file keeps the previous tokens.
func (a *Agent) ReloadTokens() error {
	if a.tokens == nil {
		return nil
	}
	return a.tokens.Reload()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// setupCredentials loads or creates the peer secret, the cluster CA and this node's
// certificate; a node joining a cluster for the first time fetches them from a member.
func (a *Agent) setupCredentials() error {
	dir := a.cfg.DataDir
	secretPath := filepath.Join(dir, clusterSecretFile)
	hadRaft := fileExists(filepath.Join(dir, raftDBFile))
	// mayCreateCA: only the first node of a new cluster (or a member of a cluster made before
	// the CA existed) creates a CA; a member that joined has the cluster's, and a missing one
	// is an error, never a new CA that no peer trusts.
	mayCreateCA := false
	sec, err := config.ReadSecretFile(secretPath)
	switch {
	case err == nil:
		// A bootstrap node stopped between writing its secret and its CA, or a member of a
		// cluster made before the CA existed. A node started with --join never makes one.
		mayCreateCA = !fileExists(filepath.Join(dir, pki.CACertFile)) && len(a.cfg.Join) == 0
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cluster secret: %w", err)
	case len(a.cfg.Join) > 0 && !hadRaft:
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		sec, err = a.fetchCredentials(ctx)
		cancel()
		if err != nil {
			return err
		}
	default:
		if sec, err = a.bootstrapSecret(); err != nil {
			return err
		}
		if err := writeSecretFile(secretPath, sec); err != nil {
			return fmt.Errorf("cluster secret: %w", err)
		}
		mayCreateCA = true
	}
	a.clusterTok = sec

	var ca *pki.CA
	if mayCreateCA {
		var created bool
		if ca, created, err = pki.LoadOrCreateCA(dir, time.Now); err == nil && created {
			if hadRaft {
				a.log.Warn("created a cluster CA for a cluster made before TLS: copy ca.crt and ca.key from this data dir to every other member's before starting it (docs/security.md)",
					"fingerprint", ca.Fingerprint())
			} else {
				a.log.Info("created the cluster CA", "fingerprint", ca.Fingerprint(), "file", filepath.Join(dir, pki.CACertFile))
			}
		}
	} else {
		ca, err = pki.LoadCADir(dir, time.Now)
	}
	if err != nil {
		return fmt.Errorf("cluster CA in %s: %w", dir, err)
	}
	a.ca = ca
	holder, err := pki.NewCertHolder(ca, a.nodeCertParams(), dir, time.Now, a.log.With("component", "certificates"))
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	a.certs = holder
	a.addComponent("certificates", func(ctx context.Context) error {
		holder.Run(ctx, time.Hour)
		return nil
	})
	return nil
}

// bootstrapSecret is the peer secret of a node that starts without one: a member of a cluster
// made before separate credentials keeps the token its peers already use (the API token, or
// the generated cluster.token); a new cluster gets a random one.
func (a *Agent) bootstrapSecret() (string, error) {
	dir := a.cfg.DataDir
	if fileExists(filepath.Join(dir, raftDBFile)) {
		if tok, err := config.ReadSecretFile(filepath.Join(dir, legacyClusterTokenFile)); err == nil {
			a.log.Warn("cluster secret taken over from cluster.token (a cluster made before separate credentials)")
			return tok, nil
		}
		if set := a.apiTokens(); set.Len() > 0 {
			if t, ok := set.First(auth.ScopeAdmin); ok {
				a.log.Warn("cluster secret taken over from the admin API token: this cluster was made before separate credentials; its peers still authenticate with it")
				return t.Secret, nil
			}
		}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func writeSecretFile(path, value string) error {
	return atomicfile.WriteFile(path, []byte(value+"\n"), 0o600)
}

// nodeCertParams names this node in its certificate: its name, its advertise address and the
// API's host.
func (a *Agent) nodeCertParams() pki.NodeParams {
	p := pki.NodeParams{Name: a.cfg.Node.Name, DNSNames: []string{a.cfg.Node.Name}}
	add := func(host string) {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			for _, have := range p.IPs {
				if have.Equal(ip) {
					return
				}
			}
			p.IPs = append(p.IPs, ip)
		} else if host != "" && net.ParseIP(host) == nil && host != a.cfg.Node.Name {
			p.DNSNames = append(p.DNSNames, host)
		}
	}
	add(a.cfg.Node.AdvertiseAddress)
	if h, _, err := net.SplitHostPort(a.cfg.API.Address); err == nil {
		add(h)
	}
	return p
}

// baseURL turns a --join entry into a base URL: https off loopback, http on it, an explicit
// scheme as given.
func baseURL(j string) string {
	if strings.Contains(j, "://") {
		return strings.TrimSuffix(j, "/")
	}
	if config.IsLoopback(j) {
		return "http://" + j
	}
	return "https://" + j
}

// joinBase is baseURL, with https on loopback too when this agent's own API is forced to TLS
// (a cluster whose agents all pass --api.tls).
func (a *Agent) joinBase(j string) string {
	if a.cfg.API.TLS && !strings.Contains(j, "://") {
		return "https://" + j
	}
	return baseURL(j)
}

// joinToken is the admin token a joining agent presents.
func (a *Agent) joinToken() (auth.Token, error) {
	t, ok := a.apiTokens().First(auth.ScopeAdmin)
	if !ok {
		return auth.Token{}, errors.New("--join: needs --api.tokenFile holding an admin token of the cluster (a read or provider token cannot join)")
	}
	return t, nil
}

// fetchCredentials asks the --join members, in turn and until ctx ends, for the cluster's
// credentials; it writes them to the data dir and returns the peer secret.
func (a *Agent) fetchCredentials(ctx context.Context) (string, error) {
	tok, err := a.joinToken()
	if err != nil {
		return "", err
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		for _, j := range a.cfg.Join {
			sec, err := a.fetchCredentialsFrom(ctx, a.joinBase(j), tok.Secret)
			if err == nil {
				return sec, nil
			}
			var fatal *fatalJoinError
			if errors.As(err, &fatal) {
				return "", err
			}
			lastErr = err
			if attempt%5 == 0 {
				a.log.Warn("fetching cluster credentials failed, retrying", "member", j, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("--join: cluster credentials from %s: %w", strings.Join(a.cfg.Join, ","), lastErr)
		case <-time.After(time.Duration(min(attempt+1, 10)) * 300 * time.Millisecond):
		}
	}
}

// fatalJoinError is a refusal retrying cannot cure (a wrong token, a CA that fails its proof).
type fatalJoinError struct{ err error }

func (e *fatalJoinError) Error() string { return e.err.Error() }
func (e *fatalJoinError) Unwrap() error { return e.err }

func (a *Agent) fetchCredentialsFrom(ctx context.Context, base, token string) (string, error) {
	hc := &http.Client{Timeout: 15 * time.Second}
	if strings.HasPrefix(base, "https://") {
		_, ca, err := pki.FetchCA(ctx, base, token, a.cfg.Security.JoinCAFingerprint)
		if err != nil {
			return "", fmt.Errorf("%s: cluster CA: %w", base, err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: pki.TrustTLS(ca, ""), DisableKeepAlives: true}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+CredentialsPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", &fatalJoinError{fmt.Errorf("--join %s: %s: %s", base, resp.Status, strings.TrimSpace(string(b)))}
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%s: %s: %s", base, resp.Status, strings.TrimSpace(string(b)))
	}
	var cr credentials
	if err := json.Unmarshal(b, &cr); err != nil {
		return "", fmt.Errorf("%s: credentials: %w", base, err)
	}
	bundle, err := pki.DecodeJoinBundle(cr.Bundle)
	if err != nil {
		return "", &fatalJoinError{fmt.Errorf("%s: credentials: %w", base, err)}
	}
	ca, err := pki.LoadCA([]byte(bundle.CACertPEM), []byte(bundle.CAKeyPEM))
	if err != nil {
		return "", &fatalJoinError{fmt.Errorf("%s: cluster CA: %w", base, err)}
	}
	dir := a.cfg.DataDir
	if err := ca.Save(dir); err != nil {
		return "", fmt.Errorf("cluster CA: %w", err)
	}
	key, err := gossip.DecodeKey(bundle.GossipKey)
	if err != nil {
		return "", &fatalJoinError{fmt.Errorf("%s: gossip key: %w", base, err)}
	}
	if err := gossip.SaveKey(dir, key); err != nil {
		return "", err
	}
	if err := writeSecretFile(filepath.Join(dir, clusterSecretFile), bundle.ClusterSecret); err != nil {
		return "", fmt.Errorf("cluster secret: %w", err)
	}
	a.joinPeers = cr.Peers
	a.log.Info("received the cluster credentials", "from", base, "ca", ca.Fingerprint())
	return bundle.ClusterSecret, nil
}

// serveCredentials is GET /cluster/credentials (admin scope): what a joining agent needs.
func (a *Agent) serveCredentials(w http.ResponseWriter, r *http.Request) {
	b, err := (&pki.JoinBundle{
		Version:       pki.JoinBundleVersion,
		ClusterSecret: a.clusterTok,
		CACertPEM:     string(a.ca.CertPEM()),
		CAKeyPEM:      string(a.ca.KeyPEM()),
		GossipKey:     gossip.EncodeKey(a.gossip.Keyring().Primary()),
	}).Encode()
	if err != nil {
		writeClusterError(w, http.StatusInternalServerError, "credentials: "+err.Error())
		return
	}
	out := credentials{Bundle: b}
	for _, n := range a.view.Nodes() {
		if n.Alive && n.Gossip != "" {
			out.Peers = append(out.Peers, n.Gossip)
		}
	}
	p, _ := auth.PrincipalFrom(r.Context())
	a.log.Info("cluster credentials handed out", "audit", true, "who", p.Name, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// serveCA is GET /cluster/ca?nonce=HEX (public): the CA certificate with, for every API token,
// a proof that this server knows it; a client that holds one of the tokens trusts the CA only
// when its proof matches (pki.FetchCA).
func (a *Agent) serveCA() http.Handler {
	return pki.CAProofHandler(a.ca.Certificate().Raw, func() [][]byte {
		var out [][]byte
		for _, t := range a.apiTokens().Tokens() {
			out = append(out, []byte(t.Secret))
		}
		return out
	})
}

// peerClient is the HTTP client for agent-to-agent calls: it presents this node's certificate
// and trusts only the cluster CA. One client (and connection pool) for the agent's life.
func (a *Agent) peerClient() *http.Client {
	a.peerOnce.Do(func() {
		a.peerHTTP = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			TLSClientConfig: a.certs.ClientTLS(""), IdleConnTimeout: 90 * time.Second, MaxIdleConnsPerHost: 2,
		}}
	})
	return a.peerHTTP
}

// derivedKey is a 32-byte key for one purpose, derived from the peer secret (every member
// holds it, so every member derives the same key).
func (a *Agent) derivedKey(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(a.clusterTok), nil, purpose, 32)
	if err != nil {
		panic(err) // only for a length sha256 cannot give
	}
	return k
}

// auditPeer logs the requests to a peer endpoint (authenticated by the peer secret, not an
// API token) that change something, as the API server logs writes: who ("peer"), what, answer.
func (a *Agent) auditPeer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		a.log.Info("peer request", "audit", true, "who", "peer", "method", r.Method, "path", r.URL.Path,
			"code", rec.code, "remote", r.RemoteAddr)
	})
}

type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (c *codeRecorder) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

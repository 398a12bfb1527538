package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"
)

// CertHolder holds this node's current certificate and renews it in place: tls.Config values
// built from it fetch the certificate on every handshake, so a renewal reaches live servers and
// clients without a restart. Safe for concurrent use.
type CertHolder struct {
	ca     *CA
	params NodeParams
	dir    string // "" keeps the certificate in memory only
	now    func() time.Time
	log    *slog.Logger

	// renewMu serialises renewals, so that two callers never both issue and write; it is
	// taken before mu and held while issuing, which mu is not (handshakes read cert).
	renewMu sync.Mutex

	mu   sync.Mutex
	cert *tls.Certificate // Leaf set; never nil after NewCertHolder
}

// NewCertHolder returns a holder for the node described by params. It uses dir/node.crt and
// dir/node.key when they hold a certificate from ca that still says what params ask for and is
// not due for renewal; otherwise it issues one with the CA key and writes both files. dir ""
// keeps the certificate in memory. now is the clock for renewals and for the certificate checks
// of the tls.Configs it builds (nil: time.Now); log nil is slog.Default().
func NewCertHolder(ca *CA, params NodeParams, dir string, now func() time.Time, log *slog.Logger) (*CertHolder, error) {
	if ca == nil {
		return nil, errors.New("node certificate: no CA")
	}
	if err := params.validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	h := &CertHolder{ca: ca, params: params, dir: dir, now: now, log: log}
	if dir != "" {
		certPEM, keyPEM, err := ReadNodeFiles(dir)
		if err == nil {
			var c *tls.Certificate
			if c, err = keyPair(certPEM, keyPEM); err == nil {
				h.cert = c
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("node certificate on disk unusable, issuing a new one", "dir", dir, "err", err)
		}
	}
	if _, err := h.RenewIfDue(now()); err != nil {
		return nil, err
	}
	return h, nil
}

// Due reports why the current certificate must be replaced at now, or "" when it is fine: it
// is missing, not from the CA, no longer says what the params ask for, or has less than a third
// of its lifetime left.
func (h *CertHolder) Due(now time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dueLocked(now)
}

func (h *CertHolder) dueLocked(now time.Time) string {
	if h.cert == nil {
		return "no certificate"
	}
	leaf := h.cert.Leaf
	if _, err := h.ca.VerifyPeer(leaf, leaf.NotBefore.Add(clockSkew)); err != nil {
		return "not issued by the cluster CA"
	}
	if !h.params.covers(leaf) {
		return "name or addresses changed"
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	if leaf.NotAfter.Sub(now) < lifetime/3 {
		return "less than a third of its lifetime left"
	}
	return ""
}

// RenewIfDue replaces the certificate when Due says so: it issues a new one with the CA key,
// writes it (atomically) when the holder has a directory, and swaps it in, so the next
// handshake presents it. On an error the current certificate stays.
func (h *CertHolder) RenewIfDue(now time.Time) (renewed bool, err error) {
	h.renewMu.Lock()
	defer h.renewMu.Unlock()
	why := h.Due(now)
	if why == "" {
		return false, nil
	}
	certPEM, keyPEM, err := h.ca.issue(now, h.params)
	if err != nil {
		return false, err
	}
	c, err := keyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("node certificate %q: %w", h.params.Name, err)
	}
	if h.dir != "" {
		if err := WriteNodeFiles(h.dir, certPEM, keyPEM); err != nil {
			return false, err
		}
	}
	h.mu.Lock()
	h.cert = c
	h.mu.Unlock()
	h.log.Info("issued node certificate", "node", h.params.Name, "reason", why,
		"serial", c.Leaf.SerialNumber.Text(16), "notAfter", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

// Run calls RenewIfDue every interval until ctx is done, logging failures (a failed renewal is
// retried on the next tick; the current certificate stays in use meanwhile).
func (h *CertHolder) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := h.RenewIfDue(h.now()); err != nil {
			h.log.Warn("node certificate renewal failed, retrying", "node", h.params.Name, "in", interval, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Certificate is the current certificate (Leaf set). Callers must not modify it.
func (h *CertHolder) Certificate() *tls.Certificate {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cert
}

// CA is the CA the holder issues with and verifies against.
func (h *CertHolder) CA() *CA { return h.ca }

// GetCertificate is for tls.Config.GetCertificate (servers).
func (h *CertHolder) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return h.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (clients).
func (h *CertHolder) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return h.Certificate(), nil
}

// VerifyPeer checks a member certificate against the CA at the holder's clock and returns the
// node name.
func (h *CertHolder) VerifyPeer(cert *x509.Certificate) (string, error) {
	return h.ca.VerifyPeer(cert, h.now())
}

// PeerServerTLS is the server side of agent-to-agent traffic (raft, peer HTTP): TLS 1.3, and
// every client must present a certificate from the cluster CA.
func (h *CertHolder) PeerServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: h.GetCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      h.ca.Pool(),
		Time:           h.now,
	}
}

// APIServerTLS is the server side of the HTTP API: clients may come without a certificate
// (ctl, Traefik: they authenticate with a bearer token); a certificate that is presented must
// be from the cluster CA (r.TLS.VerifiedChains then holds it).
// TLS 1.2 is accepted for clients outside the project, with Go's default cipher suites.
func (h *CertHolder) APIServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: h.GetCertificate,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      h.ca.Pool(),
		Time:           h.now,
	}
}

// ClientTLS is the client side of agent-to-agent traffic: TLS 1.3, this node's certificate,
// and a server certificate from the cluster CA. With serverName "" only the chain is checked
// (peers are dialled by address; see the package comment); otherwise the certificate must also
// name serverName.
func (h *CertHolder) ClientTLS(serverName string) *tls.Config {
	c := trustConfig(h.ca, serverName, h.now)
	c.MinVersion = tls.VersionTLS13
	c.GetClientCertificate = h.GetClientCertificate
	return c
}

// TrustTLS is a client configuration for a process that is not a member (ctl): no client
// certificate, a server certificate from ca (chain only when serverName is ""), checked at
// time.Now unless the caller sets Time on the result.
func TrustTLS(ca *x509.Certificate, serverName string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return trustConfig(&CA{cert: ca, pool: pool}, serverName, time.Now)
}

func trustConfig(ca *CA, serverName string, now func() time.Time) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool(), Time: now, ServerName: serverName}
	if serverName == "" {
		// The standard check would compare the dialled host with the SANs; members are
		// dialled by whatever address reaches them, so check the chain ourselves instead.
		c.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: server sent no certificate")
			}
			t := now()
			if c.Time != nil { // a caller may set Time on the returned config (TrustTLS)
				t = c.Time()
			}
			return ca.verifyServer(cs.PeerCertificates[0], cs.PeerCertificates[1:], t)
		}
	}
	return c
}

package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/constellation-sh/constellation/pkg/pki"
)

// trust is how a client decides that an https server belongs to the cluster: its certificate
// must chain to the cluster CA. The CA comes from the configuration (CACert, written by
// `ctl config set`), or is fetched once from the server with a proof that the server holds the
// client's token (pki.FetchCA), or is pinned by fingerprint. Host names are not checked: any
// certificate the cluster CA signed is a member of the cluster, whatever address it was
// dialled at (a Tailscale name, an IP).
type trust struct {
	server      string
	token       string
	fingerprint string

	mu   sync.Mutex
	pool *x509.CertPool
	ca   *x509.Certificate
}

func newTrust(server, token, fingerprint string, caPEM []byte) (*trust, error) {
	t := &trust{server: server, token: token, fingerprint: fingerprint}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		blk, _ := pem.Decode(caPEM)
		if blk == nil {
			return nil, errors.New("CA certificate: not PEM")
		}
		ca, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		if fingerprint != "" && !pki.MatchFingerprint(ca, fingerprint) {
			return nil, fmt.Errorf("CA certificate %s does not match the pinned fingerprint %s", pki.Fingerprint(ca), fingerprint)
		}
		pool.AddCert(ca)
		t.pool, t.ca = pool, ca
	}
	return t, nil
}

// ensure fetches the CA when the client does not have it yet.
func (t *trust) ensure(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pool != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, ca, err := pki.FetchCA(ctx, t.server, t.token, t.fingerprint)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
			return &ConnError{Server: t.server, Err: err}
		}
		return &TrustError{Server: t.server, Err: err}
	}
	t.pool, t.ca = pool, ca
	return nil
}

// CA returns the cluster CA the client trusts, nil before the first request over https.
func (c *Client) CA() *x509.Certificate {
	if c.trust == nil {
		return nil
	}
	c.trust.mu.Lock()
	defer c.trust.mu.Unlock()
	return c.trust.ca
}

// EnsureTrust establishes trust in an https server now (a no-op over plain http).
func (c *Client) EnsureTrust(ctx context.Context) error {
	if c.trust == nil {
		return nil
	}
	return c.trust.ensure(ctx)
}

func (t *trust) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	t.mu.Lock()
	pool := t.pool
	t.mu.Unlock()
	if pool == nil {
		return errors.New("the cluster CA is not known yet")
	}
	if len(raw) == 0 {
		return errors.New("server presented no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for _, r := range raw[1:] {
		if c, err := x509.ParseCertificate(r); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("server certificate is not from the cluster CA: %w", err)
	}
	return nil
}

func (t *trust) transport() *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
		TLSClientConfig: &tls.Config{
			MinVersion:            tls.VersionTLS12,
			InsecureSkipVerify:    true, //nolint:gosec // verified against the cluster CA in VerifyPeerCertificate
			VerifyPeerCertificate: t.verify,
		},
	}
}

func pemEncode(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// CALifetime is how long a cluster CA created by LoadOrCreateCA is valid.
const CALifetime = 10 * 365 * 24 * time.Hour

// clockSkew is how far back NotBefore is set, so that a member whose clock runs a little behind
// the issuer's accepts a certificate issued a moment ago.
const clockSkew = 5 * time.Minute

// CA is the cluster certificate authority: its certificate and private key. Every member holds
// both (see the package comment). A CA is safe for concurrent use; it is never modified.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
	pool    *x509.CertPool
	now     func() time.Time
}

// LoadOrCreateCA loads dir/ca.crt and dir/ca.key, or creates a new CA there when dir holds no
// ca.crt (created is then true). It is for the first agent of a cluster; a member that joined
// uses LoadCADir, so that a failed join never mints a CA of its own. The key file must not be
// accessible to group or others. An expired CA is an error: the cluster's certificates can no
// longer be verified. now is the clock for creation and for the certificates the CA issues
// (nil: time.Now).
func LoadOrCreateCA(dir string, now func() time.Time) (ca *CA, created bool, err error) {
	ca, err = LoadCADir(dir, now)
	if !errors.Is(err, os.ErrNotExist) {
		return ca, false, err
	}
	// ca.key is written before ca.crt, so a key without a certificate is the leftover of a
	// creation that never finished: nobody can have received that CA, start over.
	if ca, err = NewCA(now); err != nil {
		return nil, false, err
	}
	if err := ca.Save(dir); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// LoadCADir loads the CA that LoadOrCreateCA or CA.Save wrote into dir. When dir holds no
// ca.crt the error wraps fs.ErrNotExist; every other problem (a missing or world-readable
// ca.key, a key that does not match, an expired CA) is a different error.
func LoadCADir(dir string, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := readPublicFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	keyPEM, err := readPrivateFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cluster CA: %s exists but %s is missing: restore it from another member (every member holds it)", certPath, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster CA in %s: %w", dir, err)
	}
	ca.now = now
	if t := now(); t.After(ca.cert.NotAfter) {
		return nil, fmt.Errorf("cluster CA %s: expired on %s", certPath, ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return ca, nil
}

// NewCA creates a CA in memory: an ECDSA P-256 key and a self-signed certificate valid for
// CALifetime from now(). Save writes it out.
func NewCA(now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial in the name tells two clusters' CAs apart in error messages and tools.
		Subject:               pkix.Name{CommonName: "constellation cluster CA " + serial.Text(16)[:8], Organization: []string{"constellation"}},
		NotBefore:             t.Add(-clockSkew),
		NotAfter:              t.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // node certificates only, no intermediate CAs
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: encode key: %w", err)
	}
	ca, err := LoadCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, err
	}
	ca.now = now
	return ca, nil
}

// LoadCA parses a CA certificate and its private key (PEM; the key PKCS#8 or SEC 1, ECDSA). It
// refuses a certificate that is not a CA and a key that does not belong to the certificate.
// The CA issues with time.Now; WithClock changes that.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCACertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseECKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("CA key: does not match the CA certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		keyPEM:  bytes.Clone(keyPEM),
		pool:    pool,
		now:     time.Now,
	}, nil
}

// WithClock returns a copy of the CA that issues certificates with the given clock.
func (ca *CA) WithClock(now func() time.Time) *CA {
	c := *ca
	if now == nil {
		now = time.Now
	}
	c.now = now
	return &c
}

// Save writes ca.key (0600) then ca.crt (0644) into dir, each atomically. A joiner calls it with
// the CA from its JoinBundle.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), ca.keyPEM, 0o600); err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, CACertFile), ca.certPEM, 0o644); err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	return nil
}

// Certificate is the parsed CA certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM is the CA certificate, PEM encoded: public, what clients trust.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// KeyPEM is the CA private key, PEM encoded. It is handed to joiners in the JoinBundle and to
// nobody else: whoever holds it can mint member certificates.
func (ca *CA) KeyPEM() []byte { return bytes.Clone(ca.keyPEM) }

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool { return ca.pool.Clone() }

// Fingerprint is the CA certificate's fingerprint, as Fingerprint.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// String names the CA by fingerprint, so that printing a CA never prints its key.
func (ca *CA) String() string { return "cluster CA " + ca.Fingerprint() }

// GoString is String: %#v must not print the key either.
func (ca *CA) GoString() string { return ca.String() }

// VerifyPeer checks that cert is a member certificate of this cluster valid at now: issued by
// this CA, for client authentication. It returns the node name (the CommonName).
func (ca *CA) VerifyPeer(cert *x509.Certificate, now time.Time) (string, error) {
	if cert == nil {
		return "", errors.New("verify peer: no certificate")
	}
	if cert.IsCA || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("verify peer %q: not a node certificate", cert.Subject.CommonName)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       ca.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return "", fmt.Errorf("verify peer %q: %w", cert.Subject.CommonName, err)
	}
	return cert.Subject.CommonName, nil
}

// verifyServer checks that cert is a server certificate issued by this CA, valid at now, for
// any name (see the package comment for why no name).
func (ca *CA) verifyServer(cert *x509.Certificate, intermediates []*x509.Certificate, now time.Time) error {
	opts := x509.VerifyOptions{
		Roots:       ca.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(intermediates) > 0 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range intermediates {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := cert.Verify(opts); err != nil {
		return fmt.Errorf("verify server certificate %q against %s: %w", cert.Subject.CommonName, ca, err)
	}
	return nil
}

// Fingerprint is "sha256:" and the lower-case hex SHA-256 of the certificate's DER encoding.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint accepts "sha256:<hex>", a bare 64-digit hex string, or hex pairs separated by
// colons (as openssl prints them), in either case, and returns the canonical "sha256:<hex>".
func ParseFingerprint(s string) (string, error) {
	h := strings.TrimSpace(s)
	if p, rest, ok := strings.Cut(h, ":"); ok && strings.EqualFold(p, "sha256") {
		h = rest
	}
	h = strings.ReplaceAll(h, ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("fingerprint %q: want sha256:<64 hex digits>", s)
	}
	return "sha256:" + hex.EncodeToString(b), nil
}

// MatchFingerprint reports whether cert has the fingerprint fp (any form ParseFingerprint
// accepts), comparing in constant time.
func MatchFingerprint(cert *x509.Certificate, fp string) bool {
	want, err := ParseFingerprint(fp)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Fingerprint(cert)), []byte(want)) == 1
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, positive, as RFC 5280 asks (at most 20 octets).
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return serial.SetBit(serial, 127, 1), nil // a fixed width keeps the CA name's prefix 8 digits
}

// parseCACertPEM parses exactly one PEM certificate that is a CA.
func parseCACertPEM(b []byte) (*x509.Certificate, error) {
	cert, err := parseOneCertPEM(b)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %q: not a CA (basicConstraints)", cert.Subject.CommonName)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("CA certificate %q: key usage lacks certSign", cert.Subject.CommonName)
	}
	return cert, nil
}

// parseOneCertPEM parses exactly one CERTIFICATE block with nothing but white space around it.
func parseOneCertPEM(b []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("PEM block is %q, want CERTIFICATE", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	return cert, nil
}

// parseECKeyPEM parses exactly one ECDSA private key block (PKCS#8 or SEC 1).
func parseECKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the key")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want ECDSA", k)
		}
		return ek, nil
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want PRIVATE KEY", block.Type)
	}
}

package raftstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/constellation-sh/constellation/pkg/store/storetest"
)

// writeCert writes a certificate (signed by parent, or self-signed) and its key as PEM.
func writeCert(t testing.TB, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// With certificates configured the peers talk mutual TLS; a member whose certificate the
// cluster CA did not sign cannot take part.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", true, nil, nil)
	writeCert(t, dir, "node", false, ca, caKey)
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"), filepath.Join(dir, "ca.crt")
	})
	lead := c.leader()
	if _, err := c.store((lead+1)%3).Create(tctx(t, 10*time.Second), storetest.Service("web", nil)); err != nil {
		t.Fatal(err)
	}
	c.waitConverged()

	// A member with a certificate from another CA never gets a message through.
	other, otherKey := writeCert(t, dir, "otherca", true, nil, nil)
	writeCert(t, dir, "rogue", false, other, otherKey)
	cfg := testConfig("rogue", filepath.Join(dir, "rogue-data"), freeAddr(t))
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = filepath.Join(dir, "rogue.crt"), filepath.Join(dir, "rogue.key"), filepath.Join(dir, "otherca.crt")
	rogue, err := Open(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	if err := c.store(lead).tr.dialCheck(rogue.tr.addr(), rogue.ID()); err == nil {
		t.Fatal("a member dialled a peer whose certificate another CA signed")
	}
}

// dialCheck dials addr as if it were member id and closes the connection, as a peer
// does, so a test can check who is refused.
func (t *transport) dialCheck(addr string, id uint64) error {
	p := &peer{t: t, id: id, from: t.id, addr: addr, stop: make(chan struct{})}
	c, _, err := p.dial(false)
	if err != nil {
		return err
	}
	return c.Close()
}
